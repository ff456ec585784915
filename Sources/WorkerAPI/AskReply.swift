// The reply to `ask` (Protocol.md, "ask"): the answer and how it came about. `fact`,
// `score`, `sentinel_score` and `view` are always there, null when there is nothing: no fact
// beat the sentinel, an empty repository, or `method` `none` (nothing retrieved).
import Foundation

public struct AskReply: Codable, Sendable, Equatable {
    public var answer: String
    /// Tokens generated.
    public var tokens: Int
    public var method: String
    public var chat: Bool
    public var handOff: Bool
    /// `length`, `eos`, `stop` or `cancelled`.
    public var stopReason: String
    /// The fact whose prompt was used; nil when none beat the sentinel.
    public var fact: RetrievedFact?
    /// That fact's score, or the best candidate's when none was used.
    public var score: Double?
    public var sentinelScore: Double?
    /// The text the fact was searched with: `whole` or `question`.
    public var view: String?
    /// The committed step the answer read.
    public var timeStep: UInt64
    public var retrievalMS: Double
    public var latencyMS: Double

    public init(answer: String, tokens: Int, method: String, chat: Bool, handOff: Bool, stopReason: String, fact: RetrievedFact?,
                score: Double?, sentinelScore: Double?, view: String?, timeStep: UInt64, retrievalMS: Double, latencyMS: Double) {
        (self.answer, self.tokens, self.method, self.chat, self.handOff, self.stopReason) = (answer, tokens, method, chat, handOff, stopReason)
        (self.fact, self.score, self.sentinelScore, self.view) = (fact, score, sentinelScore, view)
        (self.timeStep, self.retrievalMS, self.latencyMS) = (timeStep, retrievalMS, latencyMS)
    }

    enum CodingKeys: String, CodingKey {
        case answer, tokens, method, chat, fact, score, view
        case handOff = "hand_off", stopReason = "stop_reason", sentinelScore = "sentinel_score", timeStep = "time_step"
        case retrievalMS = "retrieval_ms", latencyMS = "latency_ms"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(answer, forKey: .answer)
        try c.encode(tokens, forKey: .tokens)
        try c.encode(method, forKey: .method)
        try c.encode(chat, forKey: .chat)
        try c.encode(handOff, forKey: .handOff)
        try c.encode(stopReason, forKey: .stopReason)
        try c.encodeOrNull(fact, forKey: .fact)
        try c.encodeNumber(score, forKey: .score)
        try c.encodeNumber(sentinelScore, forKey: .sentinelScore)
        try c.encodeOrNull(view, forKey: .view)
        try c.encode(timeStep, forKey: .timeStep)
        try c.encodeNumber(retrievalMS, forKey: .retrievalMS)
        try c.encodeNumber(latencyMS, forKey: .latencyMS)
    }
}
