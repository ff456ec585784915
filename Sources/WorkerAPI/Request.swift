// The requests of the worker's socket protocol (Protocol.md, "Requests"): one JSON object
// per line, `op` naming it, `id` (any JSON value) echoed in the reply. Each op has its own
// Codable type (`AskRequest`, ...), which the worker decodes and a client encodes; `Request`
// is any one of them, read by its `op`.
import Foundation

/// A request's `op`.
public enum Op: String, Sendable, Codable, CaseIterable {
    case ask, retrieve, add, retract, stats, health, metrics
}

/// A request type: its op and the type of its reply's fields.
public protocol WorkerRequest: Codable, Sendable, Equatable {
    associatedtype Reply: Codable & Sendable
    static var op: Op { get }
    /// This request as a `Request`.
    var request: Request { get }
}

/// Any request, read by its `op`. Decoding checks `op` first: `missing_field` when absent,
/// `invalid_field` when not a string, `unknown_op` when not one of `Op`; then the op's fields.
public enum Request: Sendable, Equatable {
    case ask(AskRequest)
    case retrieve(RetrieveRequest)
    case add(AddRequest)
    case retract(RetractRequest)
    case stats(StatsRequest)
    case health(HealthRequest)
    case metrics(MetricsRequest)

    public var op: Op {
        switch self {
        case .ask: return .ask
        case .retrieve: return .retrieve
        case .add: return .add
        case .retract: return .retract
        case .stats: return .stats
        case .health: return .health
        case .metrics: return .metrics
        }
    }

    /// The fields after `op` and `id`.
    var fields: any WorkerRequest {
        switch self {
        case .ask(let r): return r
        case .retrieve(let r): return r
        case .add(let r): return r
        case .retract(let r): return r
        case .stats(let r): return r
        case .health(let r): return r
        case .metrics(let r): return r
        }
    }

    enum Key: String, CodingKey { case op, id }
}

extension Request: Codable {
    public init(from decoder: Decoder) throws {
        let fields = try RequestFields(decoder, Key.self)
        let name = try fields.requiredString(.op)
        guard let op = Op(rawValue: name) else {
            throw RequestError("unknown_op", "unknown op '\(name.prefix(64))' (\(Op.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        switch op {
        case .ask: self = .ask(try AskRequest(from: decoder))
        case .retrieve: self = .retrieve(try RetrieveRequest(from: decoder))
        case .add: self = .add(try AddRequest(from: decoder))
        case .retract: self = .retract(try RetractRequest(from: decoder))
        case .stats: self = .stats(try StatsRequest(from: decoder))
        case .health: self = .health(try HealthRequest(from: decoder))
        case .metrics: self = .metrics(try MetricsRequest(from: decoder))
        }
    }

    /// `op`, then the op's fields, in one object.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(op, forKey: .op)
        try fields.encode(to: encoder)
    }
}

/// A request line as a client sends it: `op`, `id` when given, the request's fields.
public struct RequestLine: Encodable, Sendable {
    public var request: Request
    /// Echoed in the reply; nil sends none.
    public var id: JSONValue?

    public init(_ request: Request, id: JSONValue? = nil) {
        self.request = request
        self.id = id
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Request.Key.self)
        if let id { try c.encode(id, forKey: .id) }
        try request.encode(to: encoder)
    }
}
