// What a retrieval returns: the hits that beat the Knowledge Sentinel, the candidates,
// and the sentinel's own score.

public struct RetrievalHit: Sendable, Equatable {
    public let row: Int
    /// The scaled similarity, with the subject rule applied when it is on.
    public let score: Float
    public let fact: Fact
    /// Whether the query names the fact's subject, when the subject rule looked (nil: the
    /// rule is off or the fact has no subject).
    public let subjectNamed: Bool?

    public init(row: Int, score: Float, fact: Fact, subjectNamed: Bool? = nil) {
        self.row = row
        self.score = score
        self.fact = fact
        self.subjectNamed = subjectNamed
    }
}

public struct SearchResult: Sendable, Equatable {
    /// The best rows that beat the sentinel, best first (empty: no knowledge applies).
    public let hits: [RetrievalHit]
    /// The best rows regardless of the sentinel.
    public let candidates: [RetrievalHit]
    /// The sentinel's (row 0) scaled score for this query.
    public let sentinelScore: Float

    public init(hits: [RetrievalHit], candidates: [RetrievalHit], sentinelScore: Float) {
        self.hits = hits
        self.candidates = candidates
        self.sentinelScore = sentinelScore
    }

    /// How far the best candidate beats the sentinel (negative: it does not; -∞: no candidate).
    public var margin: Float { (candidates.first?.score ?? -.infinity) - sentinelScore }
}
