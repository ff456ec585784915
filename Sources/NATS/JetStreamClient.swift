// JetStream's API over one NATS connection: JSON requests to `$JS.API.*` subjects answered
// on a reply inbox (https://docs.nats.io/reference/reference-protocols/nats_api_reference).
// What the worker and `recipe publish` need: stream info and creation, durable pull
// consumers (info, create, delete), and pull requests (`CONSUMER.MSG.NEXT`) whose
// messages arrive on this client's delivery subject.
import Foundation
import Posix

public final class JetStreamClient: @unchecked Sendable {
    public let connection: NATSConnection
    /// `_INBOX.<random>`: API replies arrive on `<inbox>.api.<n>`, pulled messages through
    /// `<inbox>.pull`, publish acknowledgements on `<inbox>.ack.<n>`.
    public let inbox: String
    public var timeoutMilliseconds: Int32
    private var counter = 0

    public init(connection: NATSConnection, timeoutMilliseconds: Int32 = 5000) throws {
        self.connection = connection
        self.timeoutMilliseconds = timeoutMilliseconds
        inbox = "_INBOX." + String(UInt64.random(in: 1...UInt64.max), radix: 36) + String(UInt32.random(in: 1...UInt32.max), radix: 36)
        // Separate subscriptions, because a pulled message arrives with its own subject
        // (e.g. "facts.in"), told apart only by the subscription id it is delivered to.
        try connection.subscribe(inbox + ".api.*", sid: Self.apiSID)
        try connection.subscribe(deliverySubject, sid: Self.pullSID)
        try connection.subscribe(inbox + ".ack.*", sid: Self.ackSID)
        try connection.roundTrip(timeoutMilliseconds: timeoutMilliseconds)
    }

    public var deliverySubject: String { inbox + ".pull" }
    static let apiSID = "1", pullSID = "2", ackSID = "3"

    /// Whether `m` came from a pull request of this client (a message or a status).
    public func isPulled(_ m: NATSMessage) -> Bool { m.sid == Self.pullSID }

    /// One API call: the reply's JSON object, or the API's error as `NATSError.jetStream`.
    @discardableResult
    public func call(_ subject: String, _ body: [String: Any]? = nil) throws -> [String: Any] {
        counter += 1
        let payload = try body.map { Array(try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys])) } ?? []
        let reply = try connection.request(subject, reply: inbox + ".api.\(counter)", payload: payload,
                                           timeoutMilliseconds: timeoutMilliseconds)
        guard let o = (try? JSONSerialization.jsonObject(with: Data(reply.payload))) as? [String: Any] else {
            throw NATSError.protocolViolation(server: connection.server.description, reason: "\(subject) answered with no JSON object")
        }
        if let e = o["error"] as? [String: Any] {
            throw NATSError.jetStream(subject: subject, code: e["code"] as? Int ?? 0, errorCode: e["err_code"] as? Int ?? 0,
                                      description: e["description"] as? String ?? "error")
        }
        return o
    }

    // MARK: streams

    /// `STREAM.INFO`: the stream's last sequence and message count.
    public func streamState(_ stream: String) throws -> (messages: UInt64, lastSequence: UInt64) {
        let o = try call("$JS.API.STREAM.INFO.\(stream)")
        let state = o["state"] as? [String: Any] ?? [:]
        return (uint(state["messages"]), uint(state["last_seq"]))
    }

    /// `STREAM.CREATE` with file storage, `replicas` copies and a deduplication window
    /// (messages with a `Nats-Msg-Id` seen within it are dropped); an existing stream of
    /// that name is left as it is (returns false).
    @discardableResult
    public func createStream(_ stream: String, subjects: [String], replicas: Int, duplicateWindowSeconds: Int = 120) throws -> Bool {
        do {
            try call("$JS.API.STREAM.CREATE.\(stream)", [
                "name": stream, "subjects": subjects, "num_replicas": replicas, "storage": "file",
                "retention": "limits", "discard": "old", "duplicate_window": duplicateWindowSeconds * 1_000_000_000,
            ])
            return true
        } catch NATSError.jetStream(_, _, let code, _) where code == 10058 {  // stream name already in use
            return false
        }
    }

    /// `STREAM.DELETE`: the stream and every message in it; nothing when it does not exist.
    public func deleteStream(_ stream: String) throws {
        do { try call("$JS.API.STREAM.DELETE.\(stream)") } catch NATSError.jetStream(_, _, let code, _) where code == 10059 {}
    }

    // MARK: consumers

    public struct ConsumerState: Sendable, Equatable {
        /// Messages of the stream not yet delivered to the consumer (its lag).
        public var pending: UInt64
        /// Delivered and not yet acknowledged.
        public var ackPending: UInt64
        /// Stream sequence of the last message delivered.
        public var deliveredStreamSequence: UInt64
    }

    /// `CONSUMER.INFO`; nil when the consumer does not exist.
    public func consumerState(stream: String, durable: String) throws -> ConsumerState? {
        let o: [String: Any]
        do { o = try call("$JS.API.CONSUMER.INFO.\(stream).\(durable)") } catch NATSError.jetStream(_, _, let code, _) where code == 10014 {
            return nil  // consumer not found
        }
        let delivered = o["delivered"] as? [String: Any] ?? [:]
        return ConsumerState(pending: uint(o["num_pending"]), ackPending: uint(o["num_ack_pending"]),
                             deliveredStreamSequence: uint(delivered["stream_seq"]))
    }

    public func deleteConsumer(stream: String, durable: String) throws {
        do { try call("$JS.API.CONSUMER.DELETE.\(stream).\(durable)") } catch NATSError.jetStream(_, _, let code, _) where code == 10014 {}
    }

    /// `CONSUMER.DURABLE.CREATE`: a durable pull consumer with explicit acknowledgement that
    /// starts at stream sequence `startSequence` (1: the whole stream), never gives up
    /// redelivering (`max_deliver` -1), and redelivers what is not acknowledged within
    /// `ackWaitSeconds`.
    public func createDurable(stream: String, durable: String, startSequence: UInt64, filterSubject: String?,
                              ackWaitSeconds: Double, maxAckPending: Int) throws {
        var config: [String: Any] = [
            "durable_name": durable, "ack_policy": "explicit", "ack_wait": Int(ackWaitSeconds * 1e9), "max_deliver": -1,
            "max_ack_pending": maxAckPending, "replay_policy": "instant",
        ]
        if startSequence > 1 {
            config["deliver_policy"] = "by_start_sequence"
            config["opt_start_seq"] = startSequence
        } else {
            config["deliver_policy"] = "all"
        }
        if let filterSubject { config["filter_subject"] = filterSubject }
        try call("$JS.API.CONSUMER.DURABLE.CREATE.\(stream).\(durable)", ["stream_name": stream, "config": config])
    }

    /// `CONSUMER.MSG.NEXT`: asks for up to `batch` messages, delivered on `deliverySubject`
    /// as they arrive for up to `expiresMilliseconds` (then a 408 status message).
    public func requestNext(stream: String, durable: String, batch: Int, expiresMilliseconds: Int) throws {
        let body = "{\"batch\":\(batch),\"expires\":\(expiresMilliseconds * 1_000_000)}"
        try connection.publish("$JS.API.CONSUMER.MSG.NEXT.\(stream).\(durable)", reply: deliverySubject, payload: Array(body.utf8))
        try connection.flush()
    }
}

/// JSON numbers arrive as Int, Double or NSNumber: a non-negative count either way.
func uint(_ any: Any?) -> UInt64 {
    if let i = any as? Int { return UInt64(max(0, i)) }
    if let n = any as? NSNumber { return n.uint64Value }
    return 0
}
