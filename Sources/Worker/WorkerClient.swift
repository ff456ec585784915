// A client of the worker's socket (the `recipe ask/add/...` commands and the tests): one
// connection, one JSON line out, one JSON line back.
import Foundation
import Glibc
import Posix

public final class WorkerClient: @unchecked Sendable {
    public let path: String
    let fd: FileDescriptor
    private var buffer: [UInt8] = []

    /// Connects to the socket; throws `PosixError` (ENOENT, ECONNREFUSED, EACCES...) when
    /// the worker is not reachable.
    public init(path: String, timeoutSeconds: Double = 600) throws {
        self.path = path
        fd = try UnixSocket.connect(path: path)
        var tv = timeval(tv_sec: Int(timeoutSeconds), tv_usec: 0)
        _ = setsockopt(fd.rawValue, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends raw bytes (tests use it for malformed input).
    public func send(raw: [UInt8]) throws { try UnixSocket.sendAll(fd, raw) }

    /// Sends one request and returns the reply object.
    public func request(_ object: [String: Any]) throws -> [String: Any] {
        var line = Array(try JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes]))
        line.append(0x0A)
        do {
            try send(raw: line)
        } catch let e as PosixError where e.errno == .brokenPipe || e.errno == Errno(rawValue: ECONNRESET) {
            // The worker may have refused the connection ("busy", "forbidden") and closed
            // it before the request went out: its reply is still there to be read.
            if let reply = try? readReply() { return reply }
            throw e
        }
        return try readReply()
    }

    /// The next reply line as an object.
    public func readReply() throws -> [String: Any] {
        let line = try readLine()
        guard let o = try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
            throw PosixError(call: "read", path: path, errno: .invalidArgument)
        }
        return o
    }

    /// The next line (without newline); throws at EOF.
    public func readLine() throws -> [UInt8] {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            if let nl = buffer.firstIndex(of: 0x0A) {
                let line = Array(buffer[..<nl])
                buffer.removeSubrange(...nl)
                return line
            }
            let n = try chunk.withUnsafeMutableBytes { try fd.read(into: $0) }
            if n == 0 { throw PosixError(call: "read", path: path, errno: Errno(rawValue: ECONNRESET)) }
            buffer += chunk[..<n]
        }
    }

    public func close() { try? fd.close() }
}
