// Publishes messages to a JetStream stream and waits for the stream's acknowledgement of
// each (a PubAck: stream and sequence, or "duplicate"), keeping up to `window` in flight.
// Every message carries `Nats-Msg-Id`: when a connection is lost (a node of the cluster
// dies), the unacknowledged ones are sent again through another server with the same ids,
// and the stream drops those it already holds (within its duplicate window). So a message
// is stored once even when its acknowledgement, not the message, was lost.
import Foundation
import Posix

public final class JetStreamPublisher: @unchecked Sendable {
    public struct Report: Sendable, Equatable {
        public var published = 0
        /// Messages the stream already held under the same `Nats-Msg-Id`.
        public var duplicates = 0
        public var firstSequence: UInt64?
        public var lastSequence: UInt64?
        public var stream = ""
        public var reconnects = 0
    }

    public let servers: [NATSServerAddress]
    public let credentials: NATSCredentials
    public let subject: String
    public var window: Int
    public var timeoutMilliseconds: Int32
    /// Give up when no server accepts messages for this long.
    public var giveUpSeconds: Double
    /// Called with each failure before a reconnection (for the command's stderr).
    public var onReconnect: ((NATSError) -> Void)?
    public private(set) var report = Report()

    private var client: JetStreamClient?
    private var next = 0
    private struct Entry { let id: String; let payload: [UInt8] }
    /// In flight, by the token of their reply subject, in publish order.
    private var unacked: [Int: Entry] = [:]
    private var order: [Int] = []
    private var serverIndex = 0
    private var lastProgress = monotonicNow()

    public init(servers: [NATSServerAddress], credentials: NATSCredentials, subject: String, window: Int = 512,
                timeoutMilliseconds: Int32 = 5000, giveUpSeconds: Double = 60) {
        self.servers = servers
        self.credentials = credentials
        self.subject = subject
        self.window = max(1, window)
        self.timeoutMilliseconds = timeoutMilliseconds
        self.giveUpSeconds = giveUpSeconds
    }

    /// Connects to the first server that answers, trying each for at most `seconds`
    /// altogether (an early, clear error when none does).
    public func connect(giveUpAfter seconds: Double = 5) throws {
        _ = try connected(giveUpAfter: seconds)
    }

    /// Queues one message with its deduplication id; waits while `window` are in flight.
    public func publish(_ payload: [UInt8], id: String) throws {
        next += 1
        unacked[next] = Entry(id: id, payload: payload)
        order.append(next)
        try send(next)
        while unacked.count >= window { try collect(timeoutMilliseconds: timeoutMilliseconds) }
    }

    /// Sends what is queued and takes the acknowledgements that have arrived, without
    /// waiting: for a caller whose input pauses (a feed that writes a line now and then).
    public func flush() throws {
        try collect(timeoutMilliseconds: 0)
    }

    /// Waits until every message is acknowledged by the stream.
    public func finish() throws -> Report {
        while !unacked.isEmpty { try collect(timeoutMilliseconds: timeoutMilliseconds) }
        try client?.connection.flush()
        return report
    }

    public func close() {
        client?.connection.close()
        client = nil
    }

    private func send(_ token: Int) throws {
        guard let e = unacked[token] else { return }
        do {
            let c = try connected()
            try c.connection.publish(subject, reply: c.inbox + ".ack.\(token)",
                                     headers: NATSHeaders(fields: [.init(name: "Nats-Msg-Id", value: e.id)]), payload: e.payload)
        } catch let error as NATSError where error.isConnectionLost {
            try reconnect(after: error)
        }
    }

    private func collect(timeoutMilliseconds: Int32) throws {
        do {
            let c = try connected()
            let messages = try c.connection.receive(timeoutMilliseconds: min(timeoutMilliseconds, 500))
            if messages.isEmpty && timeoutMilliseconds == 0 { return }
            var unanswered: [Int] = []
            for m in messages {
                guard m.subject.hasPrefix(c.inbox + ".ack."), let token = Int(m.subject.dropFirst(c.inbox.count + 5)),
                      unacked[token] != nil else { continue }
                // No responders: no stream captures the subject, or (for a few seconds after
                // a node died) the stream has no leader yet. Sent again until `giveUpSeconds`
                // pass without an acknowledgement.
                if m.headers?.status == 503 {
                    if monotonicNow() - lastProgress > giveUpSeconds { throw NATSError.noResponders(subject: subject) }
                    unanswered.append(token)
                    continue
                }
                guard let o = (try? JSONSerialization.jsonObject(with: Data(m.payload))) as? [String: Any] else { continue }
                if let e = o["error"] as? [String: Any] {
                    let code = e["err_code"] as? Int ?? 0
                    // Not yet stored (no leader during an election): send again, same id.
                    if code == 10008 || (e["code"] as? Int) == 503 { try send(token); continue }
                    throw NATSError.jetStream(subject: subject, code: e["code"] as? Int ?? 0, errorCode: code,
                                              description: e["description"] as? String ?? "error")
                }
                unacked[token] = nil
                lastProgress = monotonicNow()
                report.stream = o["stream"] as? String ?? report.stream
                if o["duplicate"] as? Bool == true { report.duplicates += 1 } else { report.published += 1 }
                let seq = uint(o["seq"])
                if seq > 0 {
                    report.firstSequence = min(report.firstSequence ?? seq, seq)
                    report.lastSequence = max(report.lastSequence ?? seq, seq)
                }
            }
            if !unanswered.isEmpty {
                usleep(200_000)
                for token in unanswered { try send(token) }
                try c.connection.flush()
            }
            order.removeAll { unacked[$0] == nil }
            if !unacked.isEmpty, monotonicNow() - lastProgress > Double(self.timeoutMilliseconds) / 1000 {
                // No acknowledgement for a while (a lost leader, a half-dead connection):
                // start over through another server; the ids make resending safe.
                try reconnect(after: .timedOut(server: c.connection.server.description, waitingFor: "publish acknowledgements",
                                               seconds: Double(self.timeoutMilliseconds) / 1000))
            }
        } catch let error as NATSError where error.isConnectionLost {
            try reconnect(after: error)
        }
    }

    private func reconnect(after error: NATSError) throws {
        onReconnect?(error)
        client?.connection.close()
        client = nil
        serverIndex += 1
        report.reconnects += 1
        _ = try connected()
        lastProgress = monotonicNow()
        for token in order where unacked[token] != nil {
            let e = unacked[token]!
            try client!.connection.publish(subject, reply: client!.inbox + ".ack.\(token)",
                                           headers: NATSHeaders(fields: [.init(name: "Nats-Msg-Id", value: e.id)]), payload: e.payload)
        }
        try client!.connection.flush()
    }

    /// The current client, or a new one: the servers in turn, with a growing pause, until
    /// `giveUpSeconds` have passed.
    private func connected(giveUpAfter seconds: Double? = nil) throws -> JetStreamClient {
        if let c = client, !c.connection.isClosed { return c }
        let deadline = monotonicNow() + (seconds ?? giveUpSeconds)
        var pause = 0.1
        var lastError: Error = NATSError.badAddress("", reason: "no servers")
        while true {
            for _ in 0..<servers.count {
                let s = servers[serverIndex % servers.count]
                do {
                    let conn = try NATSConnection(server: s, credentials: credentials, name: "recipe publish",
                                                  timeoutMilliseconds: timeoutMilliseconds)
                    let c = try JetStreamClient(connection: conn, timeoutMilliseconds: timeoutMilliseconds)
                    client = c
                    return c
                } catch let e as NATSError where e.isConnectionLost || { if case .timedOut = e { return true }; return false }() {
                    // Wrong credentials stay wrong: say so now rather than after a minute.
                    if e.isAuthorizationFailure { throw e }
                    lastError = e
                    serverIndex += 1
                }
            }
            guard monotonicNow() + pause < deadline else { throw lastError }
            usleep(useconds_t(pause * 1_000_000))
            pause = min(pause * 2, 2)
        }
    }
}
