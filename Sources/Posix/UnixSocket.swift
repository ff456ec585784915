// Unix domain stream sockets for the worker's query socket and its clients: listen on a
// path with given permissions, accept without blocking, connect, and send without
// SIGPIPE (a client that went away must cost an EPIPE, not the process).
import Glibc

public enum UnixSocket {
    /// `socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC)`, `bind`, `chmod(mode)`, `listen`.
    /// A stale socket file (nobody accepting on it) is unlinked first; a live one is
    /// refused with EADDRINUSE, so two workers cannot share a socket path.
    /// The listener is non-blocking: poll it for `Poll.readable`, then `accept`.
    public static func listen(path: String, mode: mode_t = 0o660, backlog: Int32 = 64) throws -> FileDescriptor {
        var st = stat()
        if fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFSOCK else {
                throw PosixError(call: "bind", path: path, errno: Errno(rawValue: EADDRINUSE))
            }
            if (try? connect(path: path)) != nil {
                throw PosixError(call: "bind", path: path, errno: Errno(rawValue: EADDRINUSE))
            }
            try FileSystem.unlink(path)
        }
        let fd = try socketDescriptor(path)
        var address = try makeAddress(path)
        _ = try Syscall.run(.open, "bind", path: path) {
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd.rawValue, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
        }
        _ = try Syscall.run(.open, "chmod", path: path) { Glibc.chmod(path, mode) }
        _ = try Syscall.run(.open, "listen", path: path) { Glibc.listen(fd.rawValue, backlog) }
        try fd.setNonBlocking(true)
        return fd
    }

    /// `accept4(SOCK_CLOEXEC)`: the next pending client, or nil when none is waiting.
    public static func accept(_ listener: FileDescriptor) throws -> FileDescriptor? {
        do {
            let fd = try Syscall.run(.open, "accept4", path: listener.path) {
                c_accept4(listener.rawValue, nil, nil, Int32(SOCK_CLOEXEC.rawValue))
            }
            return FileDescriptor(adopting: fd, path: listener.path + " (client)")
        } catch let e as PosixError where e.errno == .wouldBlock {
            return nil
        }
    }

    /// `connect(2)` to a listening socket (blocking descriptor). With `timeoutSeconds`,
    /// SO_SNDTIMEO and SO_RCVTIMEO are set first: on a Unix socket the send timeout also
    /// bounds `connect` itself, which blocks while the listener's backlog is full (a worker
    /// that stopped accepting), and fails with EAGAIN when it runs out.
    public static func connect(path: String, timeoutSeconds: Double? = nil) throws -> FileDescriptor {
        let fd = try socketDescriptor(path)
        if let t = timeoutSeconds {
            try setTimeout(fd, SO_SNDTIMEO, seconds: t)
            try setTimeout(fd, SO_RCVTIMEO, seconds: t)
        }
        var address = try makeAddress(path)
        _ = try Syscall.run(.open, "connect", path: path) {
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd.rawValue, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
        }
        return fd
    }

    /// `send(MSG_NOSIGNAL)` loop: every byte, or EPIPE/ECONNRESET as an error (no SIGPIPE).
    /// With `wait` false (MSG_DONTWAIT) a full socket buffer fails with EAGAIN instead of
    /// blocking: for a last word to a client being closed, which must not hold anyone up.
    public static func sendAll(_ fd: FileDescriptor, _ bytes: [UInt8], wait: Bool = true) throws {
        var done = 0
        let flags = Int32(MSG_NOSIGNAL) | (wait ? 0 : Int32(MSG_DONTWAIT))
        try bytes.withUnsafeBytes { buf in
            while done < buf.count {
                let n = Syscall.writeLimit(buf.count - done)
                done += try Syscall.run(.write, "send", path: fd.path) {
                    Glibc.send(fd.rawValue, buf.baseAddress! + done, n, flags)
                }
            }
        }
    }

    /// `shutdown(2)` with `SHUT_RD`, `SHUT_WR` or `SHUT_RDWR`. Shutting down our reading side
    /// wakes a thread blocked in `poll` on the descriptor (its `read` then returns 0) while
    /// the descriptor stays open for that thread to write and close.
    public static func shutdown(_ fd: FileDescriptor, _ how: Int32) throws {
        _ = try Syscall.run(.close, "shutdown", path: fd.path) { Glibc.shutdown(fd.rawValue, how) }
    }

    /// Whether the peer has closed its end: `poll(2)` without waiting reports POLLHUP (or
    /// POLLERR) only once both directions are down. A peer that merely shut down its writing
    /// side (`socat` and `nc -N` do at the end of their input) still reads, so POLLRDHUP,
    /// which fires for that too, would take a client that awaits its reply for gone.
    public static func peerClosed(_ fd: FileDescriptor) -> Bool {
        guard let events = try? Poll.wait([(fd.rawValue, 0)], timeoutMilliseconds: 0) else { return true }
        return events[0] & (Poll.hangUp | Poll.error | Int16(POLLNVAL)) != 0
    }

    /// The connected peer's uid, `getsockopt(SO_PEERCRED)`: the credentials the peer had
    /// when it connected, which it cannot change for this connection afterwards.
    public static func peerUID(_ fd: FileDescriptor) throws -> UInt32 {
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; } (needs _GNU_SOURCE in C, so spelled out);
        // SO_PEERCRED is 17 on Linux.
        var cred: (pid: Int32, uid: UInt32, gid: UInt32) = (0, 0, 0)
        var len = socklen_t(12)
        _ = try Syscall.run(.open, "getsockopt(SO_PEERCRED)", path: fd.path) { getsockopt(fd.rawValue, SOL_SOCKET, 17, &cred, &len) }
        return cred.uid
    }

    /// `setsockopt(SO_SNDTIMEO / SO_RCVTIMEO)`; 0 seconds means none (blocking forever).
    static func setTimeout(_ fd: FileDescriptor, _ option: Int32, seconds: Double) throws {
        let s = max(0, seconds)
        var tv = timeval(tv_sec: Int(s), tv_usec: Int((s - s.rounded(.down)) * 1e6))
        if s > 0 && tv.tv_sec == 0 && tv.tv_usec == 0 { tv.tv_usec = 1 }
        _ = try Syscall.run(.open, "setsockopt", path: fd.path) {
            setsockopt(fd.rawValue, SOL_SOCKET, option, &tv, socklen_t(MemoryLayout<timeval>.size))
        }
    }

    private static func socketDescriptor(_ path: String) throws -> FileDescriptor {
        let raw = try Syscall.run(.open, "socket", path: path) {
            Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        return FileDescriptor(adopting: raw, path: path)
    }

    /// A `sockaddr_un` for `path`; ENAMETOOLONG when it does not fit `sun_path` (108 bytes).
    private static func makeAddress(_ path: String) throws -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { throw PosixError(call: "bind", path: path, errno: Errno(rawValue: ENAMETOOLONG)) }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }
}

// accept4 needs _GNU_SOURCE, which the Glibc module map does not define.
@_silgen_name("accept4")
private func c_accept4(_ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>?, _ length: UnsafeMutablePointer<socklen_t>?,
                       _ flags: Int32) -> Int32
