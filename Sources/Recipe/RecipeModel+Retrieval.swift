// Retrieval with an editor's keys: the dense top candidates, the subject rule over them,
// then the Knowledge Sentinel's rule, for each query and its question view. What
// `KnowledgeEditor` and `RetrievalEvaluation` share.
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

    /// `retrieve` of N query texts, each also through its question view (`QuestionView`)
    /// when `questionView` is on and it has one: the retrieval whose best fact beats the
    /// sentinel by more is kept, the whole query's on a tie. The subject rule reads the whole
    /// query in both views. `features` encodes texts ([count, F]); it is called once.
    func retrieve(keys: UnsafeBufferPointer<Float>, live: UnsafeBufferPointer<Bool>?, queries: [String],
                  features: ([String]) throws -> [Float], rule: SubjectRule, questionView: Bool,
                  subject: (Int) -> String?) rethrows -> [Retrieval] {
        var texts = queries, owners: [Int] = []
        if questionView {
            for (i, q) in queries.enumerated() {
                if let v = QuestionView.question(of: q) { texts.append(v); owners.append(i) }
            }
        }
        let queryKeys = encodeQueries(features: try features(texts), count: texts.count)
        let found = retrieve(keys: keys, live: live, queryKeys: queryKeys, queries: queries + owners.map { queries[$0] },
                             rule: rule, subject: subject)
        var best = Array(found[..<queries.count])
        for (k, i) in owners.enumerated() where found[queries.count + k].margin > best[i].margin {
            best[i] = found[queries.count + k]
            best[i].byQuestion = true
        }
        return best
    }
}
