// A search's candidates rescored by the subject rule (`SubjectRule`).

extension SearchResult {
    /// The candidates rescored by `rule` for `query` (best first, at most `k`), and the hits
    /// among them that beat the sentinel.
    public func applying(_ rule: SubjectRule, query: String, k: Int) -> SearchResult {
        applying(rule, query: SubjectRule.Text(query), k: k)
    }

    /// `applying` for a query already prepared (one question searched through two views).
    public func applying(_ rule: SubjectRule, query q: SubjectRule.Text, k: Int) -> SearchResult {
        let facts = Dictionary(candidates.map { ($0.row, $0.fact) }, uniquingKeysWith: { a, _ in a })
        let rescored = rule.rescored(candidates.map { SearchHit(row: $0.row, score: $0.score) },
                                     subject: { facts[$0]?.subject }, query: q)
        let top = rescored.prefix(k).compactMap { r in
            facts[r.hit.row].map { RetrievalHit(row: r.hit.row, score: r.hit.score, fact: $0, subjectNamed: r.named) }
        }
        return SearchResult(hits: top.filter { $0.score > sentinelScore }, candidates: top, sentinelScore: sentinelScore)
    }
}
