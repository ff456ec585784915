// A message delivered by a JetStream pull consumer, told apart from the status messages
// that share its delivery subject. Its position comes from its reply (acknowledgement)
// subject, in either form the servers use:
//   $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<timestamp>.<pending>
//   $JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<timestamp>.<pending>[.<token>]
// Acknowledging publishes "+ACK" (or "+TERM": never redeliver) to that subject.

public struct JetStreamDelivery: Sendable, Equatable {
    public var stream: String
    public var consumer: String
    /// How many times it has been delivered (1 the first time).
    public var deliveryCount: UInt64
    public var streamSequence: UInt64
    public var consumerSequence: UInt64
    /// Messages left for the consumer after this one (its lag, as of this delivery).
    public var pending: UInt64
    public var ackSubject: String
    public var payload: [UInt8]

    /// Parses an acknowledgement subject; nil when it is not one.
    public init?(ackSubject: String, payload: [UInt8]) {
        let t = ackSubject.split(separator: ".", omittingEmptySubsequences: false)
        guard t.count >= 9, t[0] == "$JS", t[1] == "ACK" else { return nil }
        let base: Int
        switch t.count {
        case 9: base = 2
        case 11, 12: base = 4
        default: return nil
        }
        guard let d = UInt64(t[base + 2]), let s = UInt64(t[base + 3]), let c = UInt64(t[base + 4]),
              UInt64(t[base + 5]) != nil, let p = UInt64(t[base + 6]), s > 0 else { return nil }
        stream = String(t[base])
        consumer = String(t[base + 1])
        deliveryCount = d
        streamSequence = s
        consumerSequence = c
        pending = p
        self.ackSubject = ackSubject
        self.payload = payload
    }

    /// What arrived on a pull consumer's delivery subject.
    public enum Pulled: Sendable, Equatable {
        case message(JetStreamDelivery)
        /// 404 No Messages / 408 Request Timeout / 409 (e.g. Consumer Deleted, Leadership
        /// Change): the pull request has ended; ask again.
        case ended(status: Int, description: String)
        /// 100 Idle Heartbeat and other informational statuses.
        case status(Int)
        /// Not a JetStream message (no acknowledgement subject).
        case foreign(String)
    }

    public static func classify(_ m: NATSMessage) -> Pulled {
        if let status = m.headers?.status, m.payload.isEmpty || status >= 400 {
            return status >= 400 ? .ended(status: status, description: m.headers?.statusDescription ?? "") : .status(status)
        }
        guard let reply = m.reply, let d = JetStreamDelivery(ackSubject: reply, payload: m.payload) else {
            return .foreign(m.subject)
        }
        return .message(d)
    }
}
