// A fact object of `add` (Protocol.md, "add"): the same as in the inbox files. The worker's
// `FactParser` reads it, so its fields are kept as the request has them: each a string,
// every one optional here (the parser says which combinations make a fact).
import Foundation

/// A fact object of `add`: `prompt`+`target` with optional `subject`, `id`, `source`; or
/// `statement`. `op` is read as the inbox files read it (`retract` is refused by `add`).
public struct FactInput: Codable, Sendable, Equatable {
    public var op: String?
    public var statement: String?
    public var prompt: String?
    public var target: String?
    public var subject: String?
    public var id: String?
    public var source: String?

    public init(op: String? = nil, statement: String? = nil, prompt: String? = nil, target: String? = nil,
                subject: String? = nil, id: String? = nil, source: String? = nil) {
        (self.op, self.statement, self.prompt, self.target, self.subject, self.id, self.source) = (op, statement, prompt, target, subject, id, source)
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case op, statement, prompt, target, subject, id, source }

    /// The fields as (name, value), in the order the worker checks them.
    public var fields: [(String, String)] {
        let values = [op, statement, prompt, target, subject, id, source]
        return zip(CodingKeys.allCases, values).compactMap { key, v in v.map { (key.rawValue, $0) } }
    }

    public init(from decoder: Decoder) throws {
        // The object itself first: `facts[1]` that is `true` is named as such.
        let whole = try decoder.singleValueContainer().decode(JSONValue.self)
        guard case .object = whole else {
            throw RequestError.wrongType(fieldName(decoder.codingPath), expected: .object, found: whole.kind, note: " (a fact)")
        }
        let f = try RequestFields(decoder, CodingKeys.self)
        op = try f.string(.op)
        statement = try f.string(.statement)
        prompt = try f.string(.prompt)
        target = try f.string(.target)
        subject = try f.string(.subject)
        id = try f.string(.id)
        source = try f.string(.source)
    }
}
