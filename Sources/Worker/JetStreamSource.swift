// A NATS JetStream stream as a fact source (DESIGN.md section 6): a durable pull consumer
// of this worker's own, each message one fact line (the formats of pipes), acknowledged
// only after the time step that holds it is durable (the `TimeStepCommitter` completes the
// batch once `Repository.commit` returned, and the batch's completion calls `complete`
// here). Runs on the ingest thread, inside `FactSources.poll`: no thread of its own, no
// lock around the connection.
//
// Stored once, in stream order. Every fact is stored with the source
// "jetstream:<stream>" and its stream sequence as the line, so the repository itself
// knows how far it got (`appliedThrough`, rebuilt at open from the facts; the log format
// is unchanged). Messages are applied in stream order, so "sequence <= the highest seen"
// recognises every redelivery, including the one after a crash between the log's fsync
// and the acknowledgement. Order is what makes two workers converge, and the server
// keeps it only for first deliveries: after a crash or a lost connection, the consumer
// may hold unacknowledged messages that it would redeliver later, after newer ones. So
// at every (re)connection, unless everything it delivered was acknowledged, the durable
// consumer is recreated to start right after the highest sequence this worker has seen.
//
// Bad messages are rejected with their stream sequence (kept in the rejection log like a
// pipe's) and terminated (+TERM), so they are never redelivered.
import Foundation
import NATS
import Posix
import Storage

public final class JetStreamSource: @unchecked Sendable {
    public let config: WorkerConfig.JetStream
    public let parser: FactParser
    public let status: JetStreamStatus
    public var rejectionLog: RejectionLog?
    let log: WorkerLog?
    let servers: [NATSServerAddress]
    /// The source name of its facts and rejections: "jetstream:<stream>".
    public var name: String { "jetstream:" + config.stream }

    private var client: JetStreamClient?
    private var serverIndex = 0
    private var attempts = 0
    private var nextAttempt = 0.0
    /// Highest stream sequence whose step is durable.
    public private(set) var durableThrough: UInt64
    /// Highest stream sequence received (durable or still in a step).
    public private(set) var highestReceived: UInt64
    /// Received, not yet durable: stream sequence -> acknowledgement subject.
    private var inFlight: [UInt64: String] = [:]
    /// Acknowledgements to send at the next chance (the connection may be down meanwhile;
    /// an acknowledgement lost with it only costs a redelivery, which is recognised).
    private var pendingAcks: [(subject: String, terminate: Bool)] = []
    /// A pull request is open on the server: it ends when it has delivered `pullRemaining`
    /// messages (no status follows a fulfilled request), with a 404/408 status, or, when
    /// that status was lost, at `pullDeadline`.
    private var pullOutstanding = false
    private var pullRemaining = 0
    private var pullDeadline = 0.0

    /// - Parameter appliedThrough: the highest stream sequence the repository holds
    ///   (`appliedThrough(stream:in:)`).
    public init(config: WorkerConfig.JetStream, parser: FactParser, appliedThrough: UInt64, log: WorkerLog?,
                status: JetStreamStatus = JetStreamStatus()) throws {
        self.config = config
        self.parser = parser
        self.log = log
        self.status = status
        servers = try config.addresses()
        durableThrough = appliedThrough
        highestReceived = appliedThrough
        status.configure(stream: config.stream, consumer: config.durable, appliedThrough: appliedThrough)
    }

    /// The highest stream sequence of `stream` among the facts of `repository` (0: none).
    public static func appliedThrough(stream: String, in repository: Repository) -> UInt64 {
        repository.highestLine(ofSource: .pipe, named: "jetstream:" + stream)
    }

    /// The connection's descriptor to poll, nil while disconnected.
    public var descriptor: Int32? { client.map { $0.connection.descriptor } }

    /// How long `FactSources.poll` may sleep before `take` must run again (a reconnection or a
    /// new pull request is due).
    public func waitLimitMilliseconds() -> Int32 {
        let due = client == nil ? nextAttempt : (pullOutstanding ? pullDeadline : 0)
        return Int32(max(0, min(60, due - monotonicSeconds())) * 1000)
    }

    /// Connects when due, reads what has arrived, asks for more; the new messages as one
    /// batch (nil when none). Never throws: a lost connection is logged and retried.
    public func take() -> SourceBatch? {
        if client == nil {
            guard monotonicSeconds() >= nextAttempt else { return nil }
            connect()
        }
        guard let c = client else { return nil }
        var result = ParseResult()
        do {
            try sendAcknowledgements()
            for m in try c.connection.receive(timeoutMilliseconds: 0) where c.isPulled(m) {
                switch JetStreamDelivery.classify(m) {
                case .message(let d):
                    accept(d, into: &result)
                    pullRemaining -= 1
                    if pullRemaining <= 0 { pullOutstanding = false }
                case .ended(let code, _) where code == 404 || code == 408: pullOutstanding = false
                case .ended:
                    // No responders (the consumer has no leader yet after a node died) or a
                    // 409: ask again after a pause rather than in a tight loop.
                    pullOutstanding = true
                    pullDeadline = monotonicSeconds() + 0.5
                case .status, .foreign: break
                }
            }
            try sendAcknowledgements()
            // Ask for the next batch as soon as the last one is delivered, while the steps
            // keep up: it arrives during the commit of this one, so the next step finds it
            // waiting (asking only at the pull's expiry left the worker idle for the rest
            // of it after every full batch). A pull whose end we missed (a consumer leader
            // change drops pull requests) is replaced after its expiry.
            if (!pullOutstanding || monotonicSeconds() > pullDeadline) && inFlight.count < 4 * config.batch {
                try c.requestNext(stream: config.stream, durable: config.durable, batch: config.batch,
                                  expiresMilliseconds: config.expiresMilliseconds)
                pullOutstanding = true
                pullRemaining = config.batch
                pullDeadline = monotonicSeconds() + Double(config.expiresMilliseconds) / 1000 + 1
            }
        } catch {
            lost(error)
        }
        status.update(inFlight: inFlight.count, durableThrough: durableThrough)
        guard !result.facts.isEmpty || !result.rejections.isEmpty else { return nil }
        return .streamLines(.jetstream(stream: config.stream), result, rejectionLog: { [self] in rejectionLog },
                            acknowledge: { [self] batch in complete(batch) })
    }

    /// After the step holding `batch` is durable (its `SourceBatch.complete`, after its
    /// rejections are in the log): acknowledges its messages (+TERM for those rejected before
    /// the commit: they would fail again).
    public func complete(_ batch: SourceBatch) {
        var highest = durableThrough
        for f in batch.facts {
            let seq = UInt64(f.line)
            if let subject = inFlight.removeValue(forKey: seq) { pendingAcks.append((subject, false)) }
            highest = max(highest, seq)
        }
        for r in batch.rejections {
            let seq = UInt64(r.line)
            if let subject = inFlight.removeValue(forKey: seq) { pendingAcks.append((subject, true)) }
            highest = max(highest, seq)
        }
        durableThrough = highest
        status.acknowledged(facts: batch.facts.count, terminated: batch.rejections.count)
        if client != nil {
            do { try sendAcknowledgements() } catch { lost(error) }
        }
        status.update(inFlight: inFlight.count, durableThrough: durableThrough)
    }

    public func close() {
        if client != nil { try? sendAcknowledgements() }
        client?.connection.close()
        client = nil
    }

    // MARK: messages

    private func accept(_ d: JetStreamDelivery, into result: inout ParseResult) {
        status.delivered(pending: d.pending)
        let seq = d.streamSequence
        if seq <= durableThrough {
            // Stored already (a redelivery after a crash or a late acknowledgement).
            pendingAcks.append((d.ackSubject, false))
            status.skippedRedelivery()
            return
        }
        if seq <= highestReceived {
            // In a step that is not yet durable: that step acknowledges it.
            status.skippedRedelivery()
            if inFlight[seq] == nil {
                // Older than what arrived since and never seen by this process: the order
                // the consumer's placement at connection guarantees was broken. Say so
                // rather than store it out of order (it stays unacknowledged).
                log?.warning("jetstream_out_of_order", ["sequence": Int(clamping: seq), "highest_received": Int(clamping: highestReceived)])
            }
            return
        }
        highestReceived = seq
        inFlight[seq] = d.ackSubject
        let line = Int(clamping: seq)
        var body = d.payload[...]
        while body.last == 0x0A || body.last == 0x0D { body = body.dropLast() }
        if let newline = body.firstIndex(of: 0x0A) {
            let lines = body.split(separator: 0x0A).count
            _ = newline
            result.rejections.append(FactRejection(file: name, line: line,
                                                   reason: .refused("a message holds one fact line; this one holds \(lines)"),
                                                   text: Array(body.prefix(parser.maximumLineBytes))))
            return
        }
        switch parser.parseLine(body, format: .mixedLines, file: name, line: line) {
        case .success(let op?): result.facts.append(ParsedFact(line: line, operation: op, text: Array(body)))
        case .success(nil):
            result.rejections.append(FactRejection(file: name, line: line, reason: .emptyField("message"), text: []))
        case .failure(let r):
            result.rejections.append(FactRejection(file: r.file, line: r.line, reason: r.reason,
                                                   text: Array(body.prefix(parser.maximumLineBytes))))
        }
    }

    private func sendAcknowledgements() throws {
        guard let c = client, !pendingAcks.isEmpty else { return }
        for a in pendingAcks { try c.connection.publish(a.subject, payload: Array((a.terminate ? "+TERM" : "+ACK").utf8)) }
        try c.connection.flush()
        pendingAcks = []
    }

    // MARK: connection

    /// One attempt: the next server of the list (and those the cluster announced), the
    /// stream, the consumer placed after what this worker has seen.
    private func connect() {
        attempts += 1
        let server = servers[serverIndex % servers.count]
        do {
            let conn = try NATSConnection(server: server, credentials: try config.connectionCredentials(), name: "recipe " + config.durable,
                                          timeoutMilliseconds: 2000)
            let c = try JetStreamClient(connection: conn, timeoutMilliseconds: 5000)
            _ = try c.streamState(config.stream)
            let existing = try c.consumerState(stream: config.stream, durable: config.durable)
            var recreated = false
            if let s = existing, s.ackPending == 0, s.deliveredStreamSequence >= highestReceived,
               !(highestReceived == 0 && s.deliveredStreamSequence > 0) {
                status.delivered(pending: s.pending)
            } else {
                if existing != nil { try c.deleteConsumer(stream: config.stream, durable: config.durable) }
                try c.createDurable(stream: config.stream, durable: config.durable, startSequence: highestReceived + 1,
                                    filterSubject: config.subject, ackWaitSeconds: config.ackWaitSeconds,
                                    maxAckPending: max(1024, 8 * config.batch))
                recreated = true
                if let s = try c.consumerState(stream: config.stream, durable: config.durable) { status.delivered(pending: s.pending) }
            }
            client = c
            pullOutstanding = false
            log?.info("jetstream_connected", ["server": server.description, "server_name": conn.serverName, "stream": config.stream,
                                              "consumer": config.durable, "after_sequence": Int(highestReceived),
                                              "consumer_recreated": recreated, "attempts": attempts])
            status.connected(server: server.description)
            attempts = 0
        } catch {
            client?.connection.close()
            client = nil
            serverIndex += 1
            let pause = min(config.reconnectMaxSeconds, 0.1 * pow(2, Double(min(attempts - 1, 20))))
            nextAttempt = monotonicSeconds() + pause
            status.failed("\(error)")
            log?.error("jetstream_unavailable", ["server": server.description, "stream": config.stream, "consumer": config.durable,
                                                 "error": "\(error)", "attempt": attempts, "retry_seconds": pause])
        }
    }

    private func lost(_ error: Error) {
        log?.warning("jetstream_disconnected", ["server": client.map { $0.connection.server.description } ?? "", "error": "\(error)",
                                                "in_flight": inFlight.count])
        client?.connection.close()
        client = nil
        pullOutstanding = false
        serverIndex += 1
        attempts = 1
        nextAttempt = monotonicSeconds() + 0.1
        status.failed("\(error)")
    }
}

/// What `stats` shows of the stream source; written by the ingest thread, read by clients.
public final class JetStreamStatus: @unchecked Sendable {
    private let lock = NSLock()
    private var fields: [String: Any] = [:]
    private var enabled = false

    public init() {}

    func configure(stream: String, consumer: String, appliedThrough: UInt64) {
        lock.withLock {
            enabled = true
            fields = ["stream": stream, "consumer": consumer, "connected": false, "server": NSNull(), "pending": NSNull(),
                      "in_flight": 0, "applied_through": Int(appliedThrough), "acknowledged": 0, "terminated": 0,
                      "redeliveries_skipped": 0, "connections": 0, "last_error": NSNull()]
        }
    }
    func connected(server: String) {
        lock.withLock {
            fields["connected"] = true; fields["server"] = server
            fields["connections"] = (fields["connections"] as? Int ?? 0) + 1
        }
    }
    func failed(_ error: String) { lock.withLock { fields["connected"] = false; fields["last_error"] = error } }
    /// The consumer's pending count (its lag: messages not yet delivered).
    func delivered(pending: UInt64) { lock.withLock { fields["pending"] = Int(clamping: pending) } }
    func skippedRedelivery() { lock.withLock { fields["redeliveries_skipped"] = (fields["redeliveries_skipped"] as? Int ?? 0) + 1 } }
    func acknowledged(facts: Int, terminated: Int) {
        lock.withLock {
            fields["acknowledged"] = (fields["acknowledged"] as? Int ?? 0) + facts
            fields["terminated"] = (fields["terminated"] as? Int ?? 0) + terminated
        }
    }
    func update(inFlight: Int, durableThrough: UInt64) {
        lock.withLock { fields["in_flight"] = inFlight; fields["applied_through"] = Int(clamping: durableThrough) }
    }

    /// For `stats`: nil when the worker has no stream source.
    public func summary() -> [String: Any]? { lock.withLock { enabled ? fields : nil } }

    /// For `metrics`: the lag and the connection as gauges, the acknowledgements as counters
    /// (empty when the worker has no stream source).
    func prometheus() -> (gauges: [(name: String, help: String, value: Double)], counters: [(name: String, help: String, value: Int)]) {
        guard let f = summary() else { return ([], []) }
        var gauges: [(name: String, help: String, value: Double)] = [
            ("recipe_jetstream_connected", "1 while the stream source is connected to a NATS server.", f["connected"] as? Bool == true ? 1 : 0),
            ("recipe_jetstream_in_flight", "Stream messages read and not yet acknowledged.", Double(f["in_flight"] as? Int ?? 0)),
            ("recipe_jetstream_applied_through", "Highest stream sequence durable in the repository.", Double(f["applied_through"] as? Int ?? 0)),
        ]
        if let pending = f["pending"] as? Int {
            gauges.append(("recipe_jetstream_pending", "The consumer's lag: stream messages not yet delivered to this worker.", Double(pending)))
        }
        let counters: [(name: String, help: String, value: Int)] = [
            ("recipe_jetstream_acknowledged_total", "Stream messages acknowledged after their step was durable.", f["acknowledged"] as? Int ?? 0),
            ("recipe_jetstream_terminated_total", "Bad stream messages terminated (kept in the rejection log).", f["terminated"] as? Int ?? 0),
            ("recipe_jetstream_redeliveries_skipped_total", "Redelivered messages already stored.", f["redeliveries_skipped"] as? Int ?? 0),
            ("recipe_jetstream_connections_total", "Connections made to NATS servers.", f["connections"] as? Int ?? 0),
        ]
        return (gauges, counters)
    }
}
