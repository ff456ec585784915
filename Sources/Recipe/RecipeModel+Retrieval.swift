// Retrieval with an editor's keys: the dense top candidates, the subject rule over them,
// then the Knowledge Sentinel's rule. What `KnowledgeEditor` and `RetrievalEvaluation` share.
import Storage

extension RecipeModel {
    /// The subject rule of this editor (`RecipeConfig.subjectWeight`).
    public var subjectRule: SubjectRule { SubjectRule(weight: config.subjectWeight) }

    /// Top-1 retrieval of N queries against `keys` [facts, R]: the dense candidates, the
    /// subject rule over them (when `rule` is on and the query texts are given), then the
    /// sentinel rule.
    ///   queryKeys: [N, R], queries: N texts or nil, subject: a fact's subject (by row)
    func retrieve(keys: UnsafeBufferPointer<Float>, live: UnsafeBufferPointer<Bool>?, queryKeys: [Float], queries: [String]?,
                  rule: SubjectRule, subject: (Int) -> String?) -> [Retrieval] {
        let R = config.representationWidth, facts = keys.count / R
        let sentinel = sentinelKey, scale = similarityScale
        let ruled = rule.isOn && queries != nil
        return queryKeys.withUnsafeBufferPointer { qb in
            (0..<(queryKeys.count / R)).map { i in
                let query = qb.baseAddress! + i * R
                let s = KeySearch.dot(query, sentinel, R) * scale
                var hits = facts == 0 ? [] : KeySearch.topK(keys: keys.baseAddress!, dimension: R, rows: 0..<facts, live: live,
                                                           query: query, k: ruled ? SubjectRule.candidates : 1, scale: scale)
                if ruled, let queries { hits = rule.rescored(hits, subject: subject, query: SubjectRule.Text(queries[i])).map(\.hit) }
                guard let hit = hits.first else { return Retrieval(fact: nil, best: nil, bestScore: -.infinity, sentinelScore: s) }
                return Retrieval(fact: hit.score > s ? hit.row : nil, best: hit.row, bestScore: hit.score, sentinelScore: s)
            }
        }
    }
}
