// TCP stream sockets for network clients (the NATS client of the JetStream source and of
// `recipe publish`): resolve a host, connect with a deadline, bound every send, and read
// without blocking. Sends never raise SIGPIPE: a server that went away costs an EPIPE.
import Glibc

public enum TCPSocket {
    /// `getaddrinfo` + `socket(SOCK_STREAM | SOCK_CLOEXEC)` + non-blocking `connect` waited
    /// for with `poll` up to `timeoutMilliseconds`, for each address of `host` in turn.
    /// The returned descriptor is blocking again, with `SO_SNDTIMEO` set to
    /// `sendTimeoutMilliseconds` so that a peer that stops reading cannot hang a writer,
    /// and `TCP_NODELAY` (the protocols here are request/reply; Nagle only adds latency).
    public static func connect(host: String, port: Int, timeoutMilliseconds: Int32,
                               sendTimeoutMilliseconds: Int = 5000) throws -> FileDescriptor {
        let label = "\(host):\(port)"
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            // getaddrinfo reports its own codes, not errno: name them as "no such host".
            throw PosixError(call: "getaddrinfo", path: label, errno: .noEntry)
        }
        defer { freeaddrinfo(list) }
        var lastError = PosixError(call: "connect", path: label, errno: .noEntry)
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let a = node {
            node = a.pointee.ai_next
            do {
                let raw = try Syscall.run(.open, "socket", path: label) {
                    Glibc.socket(a.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
                }
                let fd = FileDescriptor(adopting: raw, path: label)
                try fd.setNonBlocking(true)
                let started = Glibc.connect(raw, a.pointee.ai_addr, a.pointee.ai_addrlen)
                if started == -1 {
                    let e = Errno.current
                    guard e.rawValue == EINPROGRESS || e == .interrupted else { throw PosixError(call: "connect", path: label, errno: e) }
                    let ready = try Poll.wait([(raw, Int16(POLLOUT))], timeoutMilliseconds: timeoutMilliseconds)
                    guard ready[0] != 0 else { throw PosixError(call: "connect", path: label, errno: Errno(rawValue: ETIMEDOUT)) }
                    var soError: Int32 = 0
                    var length = socklen_t(MemoryLayout<Int32>.size)
                    _ = try Syscall.run(.open, "getsockopt", path: label) { getsockopt(raw, SOL_SOCKET, SO_ERROR, &soError, &length) }
                    if soError != 0 { throw PosixError(call: "connect", path: label, errno: Errno(rawValue: soError)) }
                }
                try fd.setNonBlocking(false)
                var tv = timeval(tv_sec: sendTimeoutMilliseconds / 1000, tv_usec: (sendTimeoutMilliseconds % 1000) * 1000)
                _ = try Syscall.run(.open, "setsockopt", path: label) {
                    setsockopt(raw, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                }
                var one: Int32 = 1
                _ = try Syscall.run(.open, "setsockopt", path: label) {
                    setsockopt(raw, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                }
                return fd
            } catch let e as PosixError {
                lastError = e
            }
        }
        throw lastError
    }

    /// `recv(MSG_DONTWAIT)` once: the bytes waiting (up to `buffer.count`), 0 when none are,
    /// nil at end of stream (the peer closed).
    public static func receiveAvailable(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer) throws -> Int? {
        do {
            let n = try Syscall.run(.read, "recv", path: fd.path) {
                Glibc.recv(fd.rawValue, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT))
            }
            return n == 0 ? nil : n
        } catch let e as PosixError where e.errno == .wouldBlock {
            return 0
        }
    }
}

extension TCPSocket {
    /// `send(MSG_NOSIGNAL)` loop (see `UnixSocket.sendAll`); a send that `SO_SNDTIMEO`
    /// cut short fails with EAGAIN.
    public static func sendAll(_ fd: FileDescriptor, _ bytes: [UInt8]) throws {
        try UnixSocket.sendAll(fd, bytes)
    }
}
