// sd_notify(3) written natively: one datagram per state change to the AF_UNIX socket named
// by $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace), as systemd's
// Type=notify services do: READY=1 once the query socket listens, STATUS=... with counts,
// WATCHDOG=1 at half of $WATCHDOG_USEC, STOPPING=1 when shutdown begins. Without
// $NOTIFY_SOCKET (not run by systemd) every call does nothing.
import Glibc
import Posix

public final class SystemdNotifier: @unchecked Sendable {
    private let address: [UInt8]?
    private let fd: FileDescriptor?
    /// Interval between WATCHDOG=1 pings (half of $WATCHDOG_USEC), nil when no watchdog.
    public let watchdogInterval: Double?

    public init(environment: [String: String]) {
        var addr: [UInt8]? = nil
        var socketFD: FileDescriptor? = nil
        if let path = environment["NOTIFY_SOCKET"], !path.isEmpty, path.hasPrefix("/") || path.hasPrefix("@"),
           path.utf8.count < 108 {
            var bytes = Array(path.utf8)
            if bytes[0] == UInt8(ascii: "@") { bytes[0] = 0 }  // abstract namespace
            if let raw = try? Syscall.run(.open, "socket", path: path, {
                Glibc.socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            }) {
                addr = bytes
                socketFD = FileDescriptor(adopting: raw, path: path)
            }
        }
        address = addr
        fd = socketFD
        // WATCHDOG_PID, when set, must name us (systemd sets it for the main process).
        if let usec = environment["WATCHDOG_USEC"].flatMap({ UInt64($0) }), usec > 0,
           environment["WATCHDOG_PID"].flatMap({ Int32($0) }).map({ $0 == getpid() }) ?? true {
            watchdogInterval = Double(usec) / 2_000_000
        } else {
            watchdogInterval = nil
        }
    }

    public var isActive: Bool { fd != nil }

    /// Sends `state` ("READY=1", "STATUS=...", newline-separated assignments). Errors
    /// are returned, never thrown: notification is best effort. Non-blocking: a receiver
    /// that does not read (a full queue gives EAGAIN) must never stall the main loop.
    @discardableResult
    public func notify(_ state: String) -> PosixError? {
        guard let fd, let address else { return nil }
        var sa = sockaddr_un()
        sa.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &sa.sun_path) { raw in
            raw.copyBytes(from: address)
            if address.count < raw.count { raw[address.count] = 0 }
        }
        // Abstract addresses are length-delimited: no trailing NUL counts.
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!
        let length = address.first == 0 ? pathOffset + address.count : MemoryLayout<sockaddr_un>.size
        let message = Array(state.utf8)
        do {
            _ = try message.withUnsafeBytes { buf in
                try Syscall.run(.write, "sendto", path: fd.path) {
                    withUnsafePointer(to: &sa) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            Glibc.sendto(fd.rawValue, buf.baseAddress, buf.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT), $0, socklen_t(length))
                        }
                    }
                }
            }
            return nil
        } catch let e as PosixError {
            return e
        } catch {
            return nil
        }
    }
}
