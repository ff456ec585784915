// One client connection to one NATS server, used by one thread at a time (the worker's
// ingest thread, or `recipe publish`): INFO, then CONNECT + PING answered by PONG (or a
// -ERR naming the refusal), then SUB/PUB/HPUB out and MSG/HMSG in. The server's PINGs are
// answered while reading. Writes are gathered and sent at `flush` (one send for a batch of
// acknowledgements or publishes); reads never block past the caller's timeout.
import Foundation
import Glibc
import Posix

public final class NATSConnection: @unchecked Sendable {
    public let server: NATSServerAddress
    /// The server's `server_name` (or id) from INFO.
    public private(set) var serverName = ""
    /// Other servers of the cluster the server announced (INFO `connect_urls`), as
    /// "host:port": candidates when this one goes away.
    public private(set) var clusterURLs: [String] = []
    public private(set) var jetStreamEnabled = false
    /// The server's INFO demands TLS (`tls_required`), which this client does not speak.
    private var tlsRequired = false
    /// INFO `nonce`: what an nkey user signs.
    private var nonce: String?
    private let fd: FileDescriptor
    private var parser: NATSParser
    private var outgoing: [UInt8] = []
    /// Messages that arrived while `request` or `roundTrip` waited for something else.
    private var stash: [NATSMessage] = []
    private var pongsAwaited = 0
    /// The timeout of the current wait, for the error that says it passed.
    private var lastTimeoutMilliseconds: Int32 = 0
    public private(set) var isClosed = false

    public var descriptor: Int32 { fd.rawValue }

    /// Connects, reads INFO, sends CONNECT and waits for the PONG of a PING (so that an
    /// authorization failure is an error here, not later). A server that requires TLS is
    /// refused at INFO (`NATSError.tlsRequired`): nothing is sent to it in plain text.
    public init(server: NATSServerAddress, credentials: NATSCredentials = NATSCredentials(), name: String = "recipe",
                timeoutMilliseconds: Int32 = 2000) throws {
        self.server = server
        parser = NATSParser(server: server.description)
        do {
            fd = try TCPSocket.connect(host: server.host, port: server.port, timeoutMilliseconds: timeoutMilliseconds)
        } catch {
            throw NATSError.unreachable(server: server.description, reason: "\(error)")
        }
        lastTimeoutMilliseconds = timeoutMilliseconds
        let deadline = monotonicNow() + Double(timeoutMilliseconds) / 1000
        guard case .info(let json)? = try nextFrame(until: deadline, waitingFor: "INFO") else {
            throw NATSError.protocolViolation(server: server.description, reason: "the first frame was not INFO")
        }
        readInfo(json)
        if tlsRequired {
            close()
            throw NATSError.tlsRequired(server: server.description)
        }
        let c = credentials.applying(server)
        var connect: [String: Any] = ["verbose": false, "pedantic": false, "headers": true, "no_responders": true,
                                      "lang": "swift", "version": "1", "protocol": 1, "name": name]
        if let u = c.user { connect["user"] = u }
        if let p = c.password { connect["pass"] = p }
        if let t = c.token { connect["auth_token"] = t }
        if let seed = c.nkeySeed, let nonce {
            // Only a server that asks for a signature (nkey users) sends a nonce.
            let key = try NKey(seed: seed)
            connect["nkey"] = key.publicKey
            connect["sig"] = key.sign(nonce: nonce)
        }
        let body = try JSONSerialization.data(withJSONObject: connect, options: [.sortedKeys])
        outgoing += Array("CONNECT ".utf8) + Array(body) + Array("\r\nPING\r\n".utf8)
        pongsAwaited += 1
        try flush()
        while pongsAwaited > 0 {
            guard let frame = try nextFrame(until: deadline, waitingFor: "PONG after CONNECT") else { continue }
            if case .message(let m) = frame { stash.append(m) }
        }
    }

    deinit { close() }

    public func close() {
        guard !isClosed else { return }
        isClosed = true
        try? fd.close()
    }

    // MARK: sending

    /// SUB: deliveries on `subject` (wildcards allowed) come with `sid`.
    public func subscribe(_ subject: String, sid: String) throws {
        try checkSubject(subject, wildcards: true)
        outgoing += Array("SUB \(subject) \(sid)\r\n".utf8)
    }

    public func unsubscribe(sid: String) {
        outgoing += Array("UNSUB \(sid)\r\n".utf8)
    }

    /// PUB, or HPUB when there are headers; sent at the next `flush` (or read).
    public func publish(_ subject: String, reply: String? = nil, headers: NATSHeaders? = nil, payload: [UInt8]) throws {
        try checkSubject(subject, wildcards: false)
        if let reply { try checkSubject(reply, wildcards: false) }
        let r = reply.map { " " + $0 } ?? ""
        if let headers {
            let h = headers.encoded()
            outgoing += Array("HPUB \(subject)\(r) \(h.count) \(h.count + payload.count)\r\n".utf8)
            outgoing += h
        } else {
            outgoing += Array("PUB \(subject)\(r) \(payload.count)\r\n".utf8)
        }
        outgoing += payload
        outgoing += [0x0D, 0x0A]
    }

    /// Sends what `publish`/`subscribe` gathered.
    public func flush() throws {
        guard !outgoing.isEmpty else { return }
        guard !isClosed else { throw NATSError.closed(server: server.description) }
        let bytes = outgoing
        outgoing = []
        do { try TCPSocket.sendAll(fd, bytes) } catch {
            close()
            throw NATSError.unreachable(server: server.description, reason: "\(error)")
        }
    }

    /// PING and wait for its PONG: everything sent before has been processed by the server
    /// (e.g. a SUB is in place before a request that depends on it).
    public func roundTrip(timeoutMilliseconds: Int32 = 2000) throws {
        outgoing += Array("PING\r\n".utf8)
        pongsAwaited += 1
        try flush()
        lastTimeoutMilliseconds = timeoutMilliseconds
        let deadline = monotonicNow() + Double(timeoutMilliseconds) / 1000
        while pongsAwaited > 0 {
            guard let frame = try nextFrame(until: deadline, waitingFor: "PONG") else { continue }
            if case .message(let m) = frame { stash.append(m) }
        }
    }

    // MARK: receiving

    /// Messages that have arrived, waiting up to `timeoutMilliseconds` for the first one.
    public func receive(timeoutMilliseconds: Int32) throws -> [NATSMessage] {
        try flush()
        var out = stash
        stash = []
        if !out.isEmpty { return out + (try drain()) }
        let deadline = monotonicNow() + Double(max(0, timeoutMilliseconds)) / 1000
        repeat {
            out += try drain()
            if !out.isEmpty { return out }
            let left = Int32(max(0, (deadline - monotonicNow()) * 1000))
            if left == 0 { break }
            _ = try Poll.wait([(fd.rawValue, Poll.readable)], timeoutMilliseconds: left)
        } while true
        return out
    }

    /// Sends `payload` to `subject` with a reply subject and waits for the one message on
    /// it; other messages that arrive meanwhile are kept for `receive`. The caller must
    /// hold a subscription that covers `reply`.
    public func request(_ subject: String, reply: String, payload: [UInt8], timeoutMilliseconds: Int32) throws -> NATSMessage {
        try publish(subject, reply: reply, payload: payload)
        try flush()
        lastTimeoutMilliseconds = timeoutMilliseconds
        let deadline = monotonicNow() + Double(timeoutMilliseconds) / 1000
        while true {
            guard let frame = try nextFrame(until: deadline, waitingFor: "reply to \(subject)") else { continue }
            guard case .message(let m) = frame else { continue }
            if m.subject == reply {
                if m.headers?.status == 503 { throw NATSError.noResponders(subject: subject) }
                return m
            }
            stash.append(m)
        }
    }

    /// Parses every frame already received or receivable without waiting.
    private func drain() throws -> [NATSMessage] {
        var out: [NATSMessage] = []
        try readAvailable()
        while let f = try parser.next() {
            if case .message(let m) = f { out.append(m) } else { try handle(f) }
        }
        try flush()
        return out
    }

    /// The next frame (control frames handled here, and returned), nil when the wait for
    /// bytes ended without one; throws after `deadline`.
    private func nextFrame(until deadline: Double, waitingFor what: String) throws -> NATSFrame? {
        let waited = (Double(lastTimeoutMilliseconds) / 100).rounded() / 10
        if let f = try parser.next() { try handle(f); return f }
        let left = deadline - monotonicNow()
        guard left > 0 else { throw NATSError.timedOut(server: server.description, waitingFor: what, seconds: waited) }
        _ = try Poll.wait([(fd.rawValue, Poll.readable)], timeoutMilliseconds: Int32(max(1, left * 1000)))
        try readAvailable()
        if let f = try parser.next() { try handle(f); return f }
        return nil
    }

    private func handle(_ f: NATSFrame) throws {
        switch f {
        case .ping:
            outgoing += Array("PONG\r\n".utf8)
            try flush()
        case .pong:
            pongsAwaited = max(0, pongsAwaited - 1)
        case .error(let m):
            // Every -ERR but a permissions violation closes the connection on the server side.
            if m.lowercased().hasPrefix("permissions violation") { return }
            close()
            throw NATSError.serverError(server: server.description, message: m)
        case .info(let json):
            readInfo(json)
        case .ok, .message:
            break
        }
    }

    private func readAvailable() throws {
        guard !isClosed else { throw NATSError.closed(server: server.description) }
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n: Int?
            do { n = try chunk.withUnsafeMutableBytes { try TCPSocket.receiveAvailable(fd, into: $0) } } catch {
                close()
                throw NATSError.unreachable(server: server.description, reason: "\(error)")
            }
            guard let n else {
                close()
                throw NATSError.closed(server: server.description)
            }
            if n == 0 { return }
            parser.append(chunk[0..<n])
            if n < chunk.count { return }
        }
    }

    private func readInfo(_ json: [UInt8]) {
        guard let o = (try? JSONSerialization.jsonObject(with: Data(json))) as? [String: Any] else { return }
        serverName = o["server_name"] as? String ?? o["server_id"] as? String ?? serverName
        if let urls = o["connect_urls"] as? [String] { clusterURLs = urls }
        if let js = o["jetstream"] as? Bool { jetStreamEnabled = js }
        if let tls = o["tls_required"] as? Bool { tlsRequired = tls }
        if let n = o["nonce"] as? String, !n.isEmpty { nonce = n }
        if let max = o["max_payload"] as? Int, max > 0 { parser.maximumPayload = max + 64 * 1024 }
    }

    /// Subjects are tokens separated by dots, without whitespace (a space would split
    /// the protocol line: a config value must not be able to inject a command).
    private func checkSubject(_ s: String, wildcards: Bool) throws {
        guard !s.isEmpty, s.utf8.count <= 4096,
              !s.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }),
              !s.split(separator: ".", omittingEmptySubsequences: false).contains(where: \.isEmpty),
              wildcards || !s.split(separator: ".").contains(where: { $0 == "*" || $0 == ">" }) else {
            throw NATSError.badAddress(s, reason: "not a valid NATS subject")
        }
    }
}

/// CLOCK_MONOTONIC in seconds (deadlines; never wall time).
func monotonicNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
