// `Inotify`: a non-blocking `inotify(7)` instance. The inbox watcher waits on its
// descriptor with `Poll` and reads whole event batches.
import Glibc

public final class Inotify: @unchecked Sendable {
    public struct Event: Sendable, Equatable {
        public let watch: Int32
        public let mask: UInt32
        public let name: String
        public var isCloseWrite: Bool { mask & UInt32(IN_CLOSE_WRITE) != 0 }
        public var isMovedTo: Bool { mask & UInt32(IN_MOVED_TO) != 0 }
        public var isOverflow: Bool { mask & UInt32(IN_Q_OVERFLOW) != 0 }
    }

    /// `IN_CLOSE_WRITE | IN_MOVED_TO`: a file is complete (closed by its writer, or renamed in).
    public static let completedFiles = UInt32(IN_CLOSE_WRITE) | UInt32(IN_MOVED_TO)

    public let descriptor: FileDescriptor

    /// `inotify_init1(IN_NONBLOCK | IN_CLOEXEC)`.
    public init() throws {
        let fd = try Syscall.run(.inotify, "inotify_init1") {
            inotify_init1(Int32(IN_NONBLOCK) | Int32(IN_CLOEXEC))
        }
        descriptor = FileDescriptor(adopting: fd, path: "inotify")
    }

    /// `inotify_add_watch(2)`; returns the watch descriptor.
    @discardableResult
    public func watch(_ path: String, mask: UInt32 = Inotify.completedFiles) throws -> Int32 {
        try Syscall.run(.inotify, "inotify_add_watch", path: path) {
            inotify_add_watch(descriptor.rawValue, path, mask)
        }
    }

    /// Reads every queued event (`read(2)` until EAGAIN); empty when none is pending.
    public func readEvents() throws -> [Event] {
        var events: [Event] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n: Int
            do {
                n = try buffer.withUnsafeMutableBytes { try descriptor.read(into: $0) }
            } catch let e as PosixError where e.errno == .wouldBlock {
                return events
            }
            if n <= 0 { return events }
            var offset = 0
            let header = MemoryLayout<inotify_event>.size
            while offset + header <= n {
                let (wd, mask, len) = buffer.withUnsafeBytes { raw -> (Int32, UInt32, Int) in
                    let ev = raw.loadUnaligned(fromByteOffset: offset, as: inotify_event.self)
                    return (ev.wd, ev.mask, Int(ev.len))
                }
                let nameStart = offset + header
                let nameEnd = min(n, nameStart + len)
                let nameBytes = buffer[nameStart..<nameEnd].prefix { $0 != 0 }
                events.append(Event(watch: wd, mask: mask, name: String(decoding: nameBytes, as: UTF8.self)))
                offset = nameStart + len
            }
        }
    }
}
