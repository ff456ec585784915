// `ask`: answer a question with the retrieved knowledge (Protocol.md, "ask"). The fields as
// the request has them; the worker applies its defaults (`limits.defaultGenerationTokens`,
// method `recipe`, the config's `handOff`) and checks the values (ranges, lengths, tokens).
import Foundation

public struct AskRequest: WorkerRequest {
    public typealias Reply = AskReply
    public static let op = Op.ask
    public var request: Request { .ask(self) }

    /// Text to complete.
    public var question: String
    /// Tokens to generate (nil: the worker's default).
    public var maxTokens: Int?
    /// `recipe`, `recipe+text`, `incontext` or `none` (nil: `recipe`).
    public var method: String?
    /// Ask as a user turn of the LLM's chat template (nil: false).
    public var chat: Bool?
    /// Strings that end the answer; the wire takes one string or an array of them.
    public var stop: [String]?
    /// Hand the answer to the unedited model once the prompt stated the fact (nil: the
    /// worker's config).
    public var handOff: Bool?

    public init(question: String, maxTokens: Int? = nil, method: String? = nil, chat: Bool? = nil, stop: [String]? = nil, handOff: Bool? = nil) {
        self.question = question
        self.maxTokens = maxTokens
        self.method = method
        self.chat = chat
        self.stop = stop
        self.handOff = handOff
    }

    enum CodingKeys: String, CodingKey {
        case question, method, chat, stop
        case maxTokens = "max_tokens", handOff = "hand_off"
    }

    /// The fields in the order the worker has always checked them, so that a request with
    /// several faults is refused for the same one.
    public init(from decoder: Decoder) throws {
        let f = try RequestFields(decoder, CodingKeys.self)
        question = try f.requiredString(.question)
        let limit = decoder.userInfo[.maxGenerationTokens] as? Int
        maxTokens = try f.integer(.maxTokens, note: limit.map { " between 1 and \($0)" } ?? "")
        method = try f.string(.method)
        chat = try f.boolean(.chat)
        handOff = try f.boolean(.handOff)
        stop = try f.strings(.stop)
    }
}
