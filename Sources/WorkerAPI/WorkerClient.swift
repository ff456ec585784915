// A client of the worker's socket (the `recipe ask/add/...` commands, the benches and the
// tests): one connection, one JSON line out, one JSON line back, each step within a timeout,
// so that a stopped or hung worker costs the caller `timeoutSeconds`, not forever. Requests
// and replies are the protocol's types (`send`, `call`); `request(_:)` sends an object as
// given, for tests that send what the types cannot (a field of the wrong type on purpose).
import Foundation
import Glibc
import Posix

public final class WorkerClient: @unchecked Sendable {
    public let path: String
    /// How long connecting, and then each request (send and reply), may take.
    public let timeoutSeconds: Double
    let fd: FileDescriptor
    private var buffer: [UInt8] = []

    /// Connects to the socket; throws `PosixError` (ENOENT, ECONNREFUSED, EACCES...) when
    /// the worker is not reachable, `WorkerAPIError.timedOut` when it does not accept within
    /// `timeoutSeconds` (its listen backlog is full: it stopped accepting).
    public init(path: String, timeoutSeconds: Double = 600) throws {
        self.path = path
        self.timeoutSeconds = timeoutSeconds
        do { fd = try UnixSocket.connect(path: path, timeoutSeconds: timeoutSeconds) } catch let e as PosixError where e.errno == .wouldBlock {
            throw WorkerAPIError.timedOut(path: path, seconds: timeoutSeconds, waitingFor: "the worker to accept the connection")
        }
    }

    /// Sends `request` (with `id`, echoed in the reply) and returns the reply and the line it
    /// came as. An error reply of the worker is a reply: its `result` holds the error.
    public func send<R: WorkerRequest>(_ request: R, id: JSONValue? = nil) throws -> (reply: Reply<R.Reply>, line: [UInt8]) {
        let line = try exchange(try WireFormat.line(RequestLine(request.request, id: id)))
        do { return (try WireFormat.decode(Reply<R.Reply>.self, from: line), line) } catch {
            throw WorkerAPIError.badReply(path: path, reason: "\(R.op) reply: \(error)")
        }
    }

    /// Sends `request` and returns its reply's fields; throws the worker's `RequestError`
    /// when it refused the request.
    public func call<R: WorkerRequest>(_ request: R) throws -> R.Reply {
        try send(request).reply.result.get()
    }

    /// Sends raw bytes (tests use it for malformed input).
    public func send(raw: [UInt8]) throws {
        do { try UnixSocket.sendAll(fd, raw) } catch let e as PosixError where e.errno == .wouldBlock {
            throw WorkerAPIError.timedOut(path: path, seconds: timeoutSeconds, waitingFor: "the worker to read the request")
        }
    }

    /// Sends one request object as given and returns the reply object.
    public func request(_ object: [String: Any]) throws -> [String: Any] {
        var line = Array(try JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes]))
        line.append(0x0A)
        return try replyObject(exchange(line))
    }

    /// Sends one request line (newline included) and returns the reply line, all of it
    /// within `timeoutSeconds`.
    func exchange(_ line: [UInt8]) throws -> [UInt8] {
        let deadline = Self.now() + timeoutSeconds
        do {
            try send(raw: line)
        } catch let e as PosixError where e.errno == .brokenPipe || e.errno == Errno(rawValue: ECONNRESET) {
            // The worker may have refused the connection ("busy", "forbidden") and closed
            // it before the request went out: its reply is still there to be read.
            if let reply = try? readLine(until: deadline) { return reply }
            throw e
        }
        return try readLine(until: deadline)
    }

    /// The next reply line as an object, waiting at most `timeoutSeconds`.
    public func readReply() throws -> [String: Any] { try replyObject(readLine()) }

    func replyObject(_ line: [UInt8]) throws -> [String: Any] {
        guard let o = try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
            throw PosixError(call: "read", path: path, errno: .invalidArgument)
        }
        return o
    }

    /// The next line (without newline), waiting at most `timeoutSeconds`; throws at EOF.
    public func readLine() throws -> [UInt8] { try readLine(until: Self.now() + timeoutSeconds) }

    /// The next line, by `deadline` (monotonic seconds) for all of it: a worker that sends a
    /// byte now and then cannot stretch the wait past it, as a per-read timeout would.
    func readLine(until deadline: Double) throws -> [UInt8] {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            if let nl = buffer.firstIndex(of: 0x0A) {
                let line = Array(buffer[..<nl])
                buffer.removeSubrange(...nl)
                return line
            }
            let left = deadline - Self.now()
            let ready = left > 0 ? try Poll.wait([(fd.rawValue, Poll.readable)], timeoutMilliseconds: Int32(min(left * 1000, 3_600_000).rounded(.up))) : [0]
            if ready[0] == 0 {
                throw WorkerAPIError.timedOut(path: path, seconds: timeoutSeconds, waitingFor: "a reply")
            }
            let n: Int
            do { n = try chunk.withUnsafeMutableBytes { try fd.read(into: $0) } } catch let e as PosixError where e.errno == .wouldBlock {
                continue  // SO_RCVTIMEO ran out before the deadline's rounding: poll again
            }
            if n == 0 { throw PosixError(call: "read", path: path, errno: Errno(rawValue: ECONNRESET)) }
            buffer += chunk[..<n]
        }
    }

    public func close() { try? fd.close() }

    /// CLOCK_MONOTONIC in seconds: the deadlines' clock.
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
