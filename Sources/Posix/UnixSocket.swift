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

    /// `connect(2)` to a listening socket (blocking descriptor).
    public static func connect(path: String) throws -> FileDescriptor {
        let fd = try socketDescriptor(path)
        var address = try makeAddress(path)
        _ = try Syscall.run(.open, "connect", path: path) {
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd.rawValue, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
        }
        return fd
    }

    /// `send(MSG_NOSIGNAL)` loop: every byte, or EPIPE/ECONNRESET as an error (no SIGPIPE).
    public static func sendAll(_ fd: FileDescriptor, _ bytes: [UInt8]) throws {
        var done = 0
        try bytes.withUnsafeBytes { buf in
            while done < buf.count {
                let n = Syscall.writeLimit(buf.count - done)
                done += try Syscall.run(.write, "send", path: fd.path) {
                    Glibc.send(fd.rawValue, buf.baseAddress! + done, n, Int32(MSG_NOSIGNAL))
                }
            }
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
