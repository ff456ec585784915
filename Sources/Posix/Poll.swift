// `Poll`: `poll(2)` over a few descriptors, for sources that wait on inotify, FIFOs and
// standard input with a timeout.
import Glibc

public enum Poll {
    public static let readable = Int16(POLLIN)
    public static let hangUp = Int16(POLLHUP)
    public static let error = Int16(POLLERR)

    /// `poll(2)`: waits up to `timeoutMilliseconds` (-1 forever) for `events` on each
    /// descriptor; returns the `revents` of each, in order (all 0 on timeout).
    public static func wait(_ descriptors: [(fd: Int32, events: Int16)], timeoutMilliseconds: Int32) throws -> [Int16] {
        var fds = descriptors.map { pollfd(fd: $0.fd, events: $0.events, revents: 0) }
        let count = nfds_t(fds.count)
        _ = try fds.withUnsafeMutableBufferPointer { buf in
            try Syscall.run(.poll, "poll") { Glibc.poll(buf.baseAddress, count, timeoutMilliseconds) }
        }
        return fds.map(\.revents)
    }
}
