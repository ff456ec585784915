// `add` and `retract`: store or remove facts, acknowledged once the time step they join is
// in the fsynced log (Protocol.md). Both reply with a `CommitReply`.
import Foundation

public struct AddRequest: WorkerRequest {
    public typealias Reply = CommitReply
    public static let op = Op.add
    public var request: Request { .add(self) }

    /// One fact, or (and) several; the worker needs at least one.
    public var fact: FactInput?
    public var facts: [FactInput]?

    public init(fact: FactInput) { self.fact = fact }
    public init(facts: [FactInput]) { self.facts = facts }
    public init(fact: FactInput?, facts: [FactInput]?) { (self.fact, self.facts) = (fact, facts) }

    enum CodingKeys: String, CodingKey { case fact, facts }

    public init(from decoder: Decoder) throws {
        let f = try RequestFields(decoder, CodingKeys.self)
        fact = try f.object(FactInput.self, .fact)
        facts = try f.array(FactInput.self, .facts, note: " of facts")
    }
}

public struct RetractRequest: WorkerRequest {
    public typealias Reply = CommitReply
    public static let op = Op.retract
    public var request: Request { .retract(self) }

    /// The fact's id; `statement` is read only without it.
    public var factID: String?
    public var statement: String?

    public init(factID: String) { self.factID = factID }
    public init(statement: String) { self.statement = statement }

    enum CodingKeys: String, CodingKey {
        case statement
        case factID = "fact_id"
    }

    public init(from decoder: Decoder) throws {
        let f = try RequestFields(decoder, CodingKeys.self)
        factID = try f.string(.factID)
        statement = factID == nil ? try f.string(.statement) : nil
    }
}
