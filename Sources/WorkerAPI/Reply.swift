// A reply line (Protocol.md): `{"ok": true, "op": ..., "id": ..., ...the op's fields}` or
// `{"ok": false, "id": ..., "error": {"code", "message", ...}}`, `id` only when the request
// had one (null when it was null). `Reply<AskReply>` is what a client of `ask` reads;
// `Reply<ReplyBody>` is any reply, as the worker sends it.
import Foundation

public struct Reply<Body: Codable & Sendable>: Codable, Sendable {
    /// The request's `id`, echoed; nil when the request had none.
    public var id: JSONValue?
    /// The request's op: a success reply names it, an error reply does not.
    public var op: Op?
    public var result: Result<Body, RequestError>

    public init(op: Op, id: JSONValue?, body: Body) {
        self.op = op
        self.id = id
        result = .success(body)
    }

    public init(id: JSONValue?, error: RequestError) {
        self.id = id
        result = .failure(error)
    }

    public var ok: Bool { if case .success = result { return true } else { return false } }
    public var body: Body? { try? result.get() }
    public var error: RequestError? { if case .failure(let e) = result { return e } else { return nil } }

    enum Key: String, CodingKey { case ok, op, id, error }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        id = c.contains(.id) ? try c.decode(JSONValue.self, forKey: .id) : nil
        if try c.decode(Bool.self, forKey: .ok) {
            op = try c.decodeIfPresent(Op.self, forKey: .op)
            result = .success(try Body(from: decoder))
        } else {
            result = .failure(try c.decode(RequestError.self, forKey: .error))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        if let id { try c.encode(id, forKey: .id) }
        switch result {
        case .success(let body):
            try c.encode(true, forKey: .ok)
            try c.encodeIfPresent(op, forKey: .op)
            try body.encode(to: encoder)
        case .failure(let error):
            try c.encode(false, forKey: .ok)
            try c.encode(error, forKey: .error)
        }
    }
}

extension Reply where Body == ReplyBody {
    /// A success reply of any op: the op is the body's.
    public init(id: JSONValue?, body: ReplyBody) { self.init(op: body.op, id: id, body: body) }
}

/// The fields of any success reply, read by the reply's `op`.
public enum ReplyBody: Codable, Sendable {
    case ask(AskReply)
    case retrieve(RetrieveReply)
    case add(CommitReply)
    case retract(CommitReply)
    case stats(StatsReply)
    case health(HealthReply)
    case metrics(MetricsReply)

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

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Reply<ReplyBody>.Key.self)
        switch try c.decode(Op.self, forKey: .op) {
        case .ask: self = .ask(try AskReply(from: decoder))
        case .retrieve: self = .retrieve(try RetrieveReply(from: decoder))
        case .add: self = .add(try CommitReply(from: decoder))
        case .retract: self = .retract(try CommitReply(from: decoder))
        case .stats: self = .stats(try StatsReply(from: decoder))
        case .health: self = .health(try HealthReply(from: decoder))
        case .metrics: self = .metrics(try MetricsReply(from: decoder))
        }
    }

    public func encode(to encoder: Encoder) throws {
        switch self {
        case .ask(let r): try r.encode(to: encoder)
        case .retrieve(let r): try r.encode(to: encoder)
        case .add(let r), .retract(let r): try r.encode(to: encoder)
        case .stats(let r): try r.encode(to: encoder)
        case .health(let r): try r.encode(to: encoder)
        case .metrics(let r): try r.encode(to: encoder)
        }
    }
}
