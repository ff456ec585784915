// What a retrieval returns: the hits that beat the Knowledge Sentinel, the candidates,
// and the sentinel's own score.

public struct RetrievalHit: Sendable, Equatable {
    public let row: Int
    public let score: Float
    public let fact: Fact
}

public struct SearchResult: Sendable, Equatable {
    /// The best rows that beat the sentinel, best first (empty: no knowledge applies).
    public let hits: [RetrievalHit]
    /// The best rows regardless of the sentinel.
    public let candidates: [RetrievalHit]
    /// The sentinel's (row 0) scaled score for this query.
    public let sentinelScore: Float
}
