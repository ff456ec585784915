// Structured logs of the worker: one JSON object per line on stderr (journald keeps the
// lines; `journalctl -o cat` shows them) and optionally appended to a log file. Each line
// carries the time (RFC 3339, UTC), the level, an event name and the event's fields.
import Foundation
import Glibc
import Posix

public final class WorkerLog: @unchecked Sendable {
    public enum Level: Int, Comparable, Sendable {
        case debug, info, warning, error
        public init?(name: String) {
            switch name {
            case "debug": self = .debug
            case "info": self = .info
            case "warning": self = .warning
            case "error": self = .error
            default: return nil
            }
        }
        public var name: String { ["debug", "info", "warning", "error"][rawValue] }
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
    }

    private let lock = NSLock()
    private var level: Level
    private var file: FileDescriptor?
    /// A static owner is never deallocated, so descriptor 2 is never closed by it.
    private static let stderr = FileDescriptor(adopting: 2, path: "<stderr>")

    /// - Parameter filePath: also append the lines to this file (created 0640 if absent).
    public init(level: Level = .info, filePath: String? = nil) throws {
        self.level = level
        if let filePath {
            file = try FileDescriptor.open(filePath, O_WRONLY | O_CREAT | O_APPEND, mode: 0o640)
        }
    }

    public func setLevel(_ l: Level) { lock.withLock { level = l } }

    public func debug(_ event: String, _ fields: [String: Any] = [:]) { write(.debug, event, fields) }
    public func info(_ event: String, _ fields: [String: Any] = [:]) { write(.info, event, fields) }
    public func warning(_ event: String, _ fields: [String: Any] = [:]) { write(.warning, event, fields) }
    public func error(_ event: String, _ fields: [String: Any] = [:]) { write(.error, event, fields) }

    public func write(_ l: Level, _ event: String, _ fields: [String: Any]) {
        guard l >= lock.withLock({ level }) else { return }
        var object = fields
        object["ts"] = Self.timestamp()
        object["level"] = l.name
        object["event"] = event
        var line = (try? JSONSerialization.data(withJSONObject: JSONSanitizer.sanitize(object), options: [.sortedKeys, .withoutEscapingSlashes]))
            .map { Array($0) } ?? Array("{\"event\":\"log_encoding_failed\"}".utf8)
        line.append(0x0A)
        lock.withLock {
            try? Self.stderr.writeAll(line)
            try? file?.writeAll(line)
        }
    }

    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var tmv = tm()
        gmtime_r(&t, &tmv)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(tmv.tm_year) + 1900, Int(tmv.tm_mon) + 1, Int(tmv.tm_mday),
                      Int(tmv.tm_hour), Int(tmv.tm_min), Int(tmv.tm_sec), Int(ts.tv_nsec / 1_000_000))
    }
}

/// Makes values JSONSerialization accepts: non-finite floats become null, unknown types strings.
enum JSONSanitizer {
    static func sanitize(_ v: Any) -> Any {
        switch v {
        case let d as [String: Any]: return d.mapValues { sanitize($0) }
        case let a as [Any]: return a.map { sanitize($0) }
        case let f as Float: return f.isFinite ? Double(f) : NSNull()
        case let f as Double: return f.isFinite ? f : NSNull()
        case is String, is Int, is Bool, is NSNull, is Int64, is UInt64, is Int32, is UInt32, is NSNumber: return v
        case let o as Optional<Any>:
            if case .some(let x) = o { return sanitize(x) }
            return NSNull()
        }
    }
}
