// The reply to `retrieve` (Protocol.md, "retrieve"): the candidates, the fact that beat the
// sentinel (null when none did) and, when asked for, its continuous prompt.
import Foundation

public struct RetrieveReply: Codable, Sendable, Equatable {
    /// The text that found them: `whole` or `question`.
    public var view: String
    /// The best fact above the sentinel, and its score (nil: none beat it).
    public var fact: RetrievedFact?
    public var score: Double?
    public var sentinelScore: Double
    /// The best `k`, best first.
    public var candidates: [Candidate]
    public var timeStep: UInt64
    public var prompt: PromptField
    public var latencyMS: Double

    /// `prompt`: absent unless `include_prompt` was true; then null when no fact was used.
    public enum PromptField: Sendable, Equatable {
        case notRequested
        case noFact
        case prompt(RetrievedPrompt)

        public var value: RetrievedPrompt? { if case .prompt(let p) = self { return p } else { return nil } }
    }

    public init(view: String, fact: RetrievedFact?, score: Double?, sentinelScore: Double, candidates: [Candidate], timeStep: UInt64,
                prompt: PromptField, latencyMS: Double) {
        (self.view, self.fact, self.score, self.sentinelScore, self.candidates) = (view, fact, score, sentinelScore, candidates)
        (self.timeStep, self.prompt, self.latencyMS) = (timeStep, prompt, latencyMS)
    }

    enum CodingKeys: String, CodingKey {
        case view, fact, score, candidates, prompt
        case sentinelScore = "sentinel_score", timeStep = "time_step", latencyMS = "latency_ms"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        view = try c.decode(String.self, forKey: .view)
        fact = try c.decodeIfPresent(RetrievedFact.self, forKey: .fact)
        score = try c.decodeIfPresent(Double.self, forKey: .score)
        sentinelScore = try c.decodeNumber(forKey: .sentinelScore)
        candidates = try c.decode([Candidate].self, forKey: .candidates)
        timeStep = try c.decode(UInt64.self, forKey: .timeStep)
        if !c.contains(.prompt) {
            prompt = .notRequested
        } else if let p = try c.decodeIfPresent(RetrievedPrompt.self, forKey: .prompt) {
            prompt = .prompt(p)
        } else {
            prompt = .noFact
        }
        latencyMS = try c.decode(Double.self, forKey: .latencyMS)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(view, forKey: .view)
        try c.encodeOrNull(fact, forKey: .fact)
        try c.encodeNumber(score, forKey: .score)
        try c.encodeNumber(sentinelScore, forKey: .sentinelScore)
        try c.encode(candidates, forKey: .candidates)
        try c.encode(timeStep, forKey: .timeStep)
        switch prompt {
        case .notRequested: break
        case .noFact: try c.encodeNil(forKey: .prompt)
        case .prompt(let p): try c.encode(p, forKey: .prompt)
        }
        try c.encodeNumber(latencyMS, forKey: .latencyMS)
    }
}

/// A fact's continuous prompt, for another local inference process to prepend to its token
/// embeddings: `leading_token`'s embedding first (when not null), then the `rows` rows.
public struct RetrievedPrompt: Codable, Sendable, Equatable {
    public var rows: Int
    public var width: Int
    /// rows × width values, row-major (a value that is not finite is sent as null).
    public var values: [Double]
    public var leadingToken: Int?

    public init(rows: Int, width: Int, values: [Double], leadingToken: Int?) {
        (self.rows, self.width, self.values, self.leadingToken) = (rows, width, values, leadingToken)
    }

    enum CodingKeys: String, CodingKey {
        case rows, width, values
        case leadingToken = "leading_token"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        rows = try c.decode(Int.self, forKey: .rows)
        width = try c.decode(Int.self, forKey: .width)
        values = try c.decode([Double?].self, forKey: .values).map { $0 ?? .nan }
        leadingToken = try c.decodeIfPresent(Int.self, forKey: .leadingToken)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(rows, forKey: .rows)
        try c.encode(width, forKey: .width)
        try c.encode(values.map { $0.isFinite ? $0 : nil }, forKey: .values)
        try c.encodeOrNull(leadingToken, forKey: .leadingToken)
    }
}
