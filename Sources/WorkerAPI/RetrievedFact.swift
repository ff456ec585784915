// A stored fact as replies show it: `fact` of `ask` and `retrieve`, and each candidate of
// `retrieve` (with its scores beside it). `prompt`, `target` and `subject` are there only
// when the fact has them.
import Foundation

public struct RetrievedFact: Codable, Sendable, Equatable {
    public var id: String
    public var statement: String
    public var prompt: String?
    public var target: String?
    public var subject: String?

    public init(id: String, statement: String, prompt: String? = nil, target: String? = nil, subject: String? = nil) {
        (self.id, self.statement, self.prompt, self.target, self.subject) = (id, statement, prompt, target, subject)
    }
}

/// One candidate of `retrieve`, best first: the fact's fields and its scores in one object.
public struct Candidate: Codable, Sendable, Equatable {
    public var fact: RetrievedFact
    /// Scaled similarity with the subject rule applied.
    public var score: Double
    /// Whether the score beats the Knowledge Sentinel's.
    public var aboveSentinel: Bool
    /// Whether the question names the fact's subject: only for a fact with a subject while
    /// the editor's subject rule is on.
    public var subjectNamed: Bool?

    public init(fact: RetrievedFact, score: Double, aboveSentinel: Bool, subjectNamed: Bool? = nil) {
        (self.fact, self.score, self.aboveSentinel, self.subjectNamed) = (fact, score, aboveSentinel, subjectNamed)
    }

    enum CodingKeys: String, CodingKey {
        case score
        case aboveSentinel = "above_sentinel", subjectNamed = "subject_named"
    }

    public init(from decoder: Decoder) throws {
        fact = try RetrievedFact(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        score = try c.decodeNumber(forKey: .score)
        aboveSentinel = try c.decode(Bool.self, forKey: .aboveSentinel)
        subjectNamed = try c.decodeIfPresent(Bool.self, forKey: .subjectNamed)
    }

    public func encode(to encoder: Encoder) throws {
        try fact.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeNumber(score, forKey: .score)
        try c.encode(aboveSentinel, forKey: .aboveSentinel)
        try c.encodeIfPresent(subjectNamed, forKey: .subjectNamed)
    }
}
