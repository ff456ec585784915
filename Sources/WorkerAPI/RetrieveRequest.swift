// `retrieve`: the fact and the scores for a question, without generating (Protocol.md,
// "retrieve"); with `include_prompt`, the continuous prompt another process can prepend.
import Foundation

/// `retrieve`: the fact and the scores, without generating (Protocol.md, "retrieve").
public struct RetrieveRequest: WorkerRequest {
    public typealias Reply = RetrieveReply
    public static let op = Op.retrieve
    public var request: Request { .retrieve(self) }
    /// The most candidates a request may ask for.
    public static let maxK = 64

    public var question: String
    /// Candidates to return, 1...`maxK` (nil: 1).
    public var k: Int?
    /// Return the used fact's continuous prompt (nil: false).
    public var includePrompt: Bool?

    public init(question: String, k: Int? = nil, includePrompt: Bool? = nil) {
        self.question = question
        self.k = k
        self.includePrompt = includePrompt
    }

    enum CodingKeys: String, CodingKey {
        case question, k
        case includePrompt = "include_prompt"
    }

    public init(from decoder: Decoder) throws {
        let f = try RequestFields(decoder, CodingKeys.self)
        question = try f.requiredString(.question)
        k = try f.integer(.k, note: " between 1 and \(Self.maxK)")
        includePrompt = try f.boolean(.includePrompt)
    }
}
