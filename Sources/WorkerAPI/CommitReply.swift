// The reply to `add` and `retract` (Protocol.md), sent once the request's time step is in
// the fsynced log: one outcome per fact, and, when there is exactly one, its fields also at
// the top of the reply (`"status": "added", "fact_id": ...`).
import Foundation

public struct CommitReply: Codable, Sendable, Equatable {
    public var outcomes: [CommitOutcome]
    /// The time step the request joined.
    public var timeStep: UInt64
    /// Always true: the reply comes only after the fsync.
    public var durable: Bool

    public init(outcomes: [CommitOutcome], timeStep: UInt64, durable: Bool = true) {
        (self.outcomes, self.timeStep, self.durable) = (outcomes, timeStep, durable)
    }

    /// The outcome of a request of one fact (nil with several).
    public var outcome: CommitOutcome? { outcomes.count == 1 ? outcomes[0] : nil }

    enum CodingKeys: String, CodingKey {
        case outcomes, durable
        case timeStep = "time_step"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        outcomes = try c.decode([CommitOutcome].self, forKey: .outcomes)
        timeStep = try c.decode(UInt64.self, forKey: .timeStep)
        durable = try c.decode(Bool.self, forKey: .durable)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(outcomes, forKey: .outcomes)
        try c.encode(timeStep, forKey: .timeStep)
        try c.encode(durable, forKey: .durable)
        if let outcome { try outcome.encode(to: encoder) }
    }
}

/// What became of one fact of `add` or `retract`, by its `status`.
public enum CommitOutcome: Codable, Sendable, Equatable {
    /// Stored as a new fact.
    case added(factID: String)
    /// Stored, replacing the live fact `replaced` (same subject and prompt, new target).
    case superseded(factID: String, replaced: String)
    /// The same statement is live as `factID`; nothing stored.
    case duplicate(factID: String)
    case retracted(factID: String)
    /// No live fact matched the retraction of `target` (an id or a statement).
    case notFound(target: String)
    /// Refused (the reason says why).
    case invalid(reason: String)

    public var status: String {
        switch self {
        case .added: return "added"
        case .superseded: return "superseded"
        case .duplicate: return "duplicate"
        case .retracted: return "retracted"
        case .notFound: return "not_found"
        case .invalid: return "invalid"
        }
    }

    /// The fact it concerns, when it names one.
    public var factID: String? {
        switch self {
        case .added(let id), .superseded(let id, _), .duplicate(let id), .retracted(let id): return id
        case .notFound, .invalid: return nil
        }
    }

    /// What a retraction that found nothing was given (an id or a statement).
    public var target: String? { if case .notFound(let t) = self { return t } else { return nil } }

    enum CodingKeys: String, CodingKey {
        case status, replaced, target, reason
        case factID = "fact_id"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let status = try c.decode(String.self, forKey: .status)
        func id() throws -> String { try c.decode(String.self, forKey: .factID) }
        switch status {
        case "added": self = .added(factID: try id())
        case "superseded": self = .superseded(factID: try id(), replaced: try c.decode(String.self, forKey: .replaced))
        case "duplicate": self = .duplicate(factID: try id())
        case "retracted": self = .retracted(factID: try id())
        case "not_found": self = .notFound(target: try c.decode(String.self, forKey: .target))
        case "invalid": self = .invalid(reason: try c.decode(String.self, forKey: .reason))
        default:
            throw DecodingError.dataCorruptedError(forKey: .status, in: c, debugDescription: "unknown status '\(status)'")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(status, forKey: .status)
        try c.encodeIfPresent(factID, forKey: .factID)
        switch self {
        case .superseded(_, let replaced): try c.encode(replaced, forKey: .replaced)
        case .notFound(let target): try c.encode(target, forKey: .target)
        case .invalid(let reason): try c.encode(reason, forKey: .reason)
        default: break
        }
    }
}
