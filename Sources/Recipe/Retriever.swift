// The one implementation of RECIPE's retrieval decision, which the worker's `ask` and
// `retrieve` serve and `recipe eval` measures:
//
//   1. the query key of the question (the editor's query head);
//   2. the dense top candidates of the keys by scaled dot product (`KeyIndex.search`);
//   3. the subject rule over the best `SubjectRule.candidates` (when it is on);
//   4. the Knowledge Sentinel: a candidate is kept only if it beats the sentinel's score;
//   5. the question view: a question of several sentences is also searched with its last
//      sentence (`QuestionView`), and the view whose best candidate beats the sentinel by
//      more is kept (the whole question on a tie); the subject rule reads the whole
//      question in both views.
//
// Keys are read through `KeyIndex`, which the repository's snapshot (the worker) and
// `FactKeys` (the evaluation's in-memory facts) implement; Storage stores and searches keys,
// it does not decide.
import Parallelism
import Storage

/// Keys retrieval searches: top `k` rows by `scale · dot(key, query)` and the sentinel's
/// scaled score, the sentinel rule applied (no subject rule).
public protocol KeyIndex {
    ///   query: [R]
    func search(_ query: [Float], k: Int, scale: Float) throws -> SearchResult
}

extension RepositorySnapshot: KeyIndex {}

/// What retrieval found for one question.
public struct Retrieved: Sendable, Equatable {
    /// The kept view's result: the hits that beat the sentinel, the candidates, the sentinel's score.
    public let result: SearchResult
    /// Whether the question's last sentence was the view kept (`QuestionView`).
    public let byQuestion: Bool

    public init(result: SearchResult, byQuestion: Bool) {
        self.result = result
        self.byQuestion = byQuestion
    }
}

public struct Retriever {
    /// RECIPE's similarity scale (`RecipeModel.similarityScale`).
    public let scale: Float
    public let rule: SubjectRule
    public let questionView: Bool
    /// Query keys [N, R] of N texts.
    public let queryKeys: ([String]) throws -> [Float]

    public init(scale: Float, rule: SubjectRule, questionView: Bool, queryKeys: @escaping ([String]) throws -> [Float]) {
        self.scale = scale
        self.rule = rule
        self.questionView = questionView
        self.queryKeys = queryKeys
    }

    /// The retrieval of each question (best `k` candidates) from `index`.
    public func retrieve(_ questions: [String], in index: any KeyIndex, k: Int = 1) throws -> [Retrieved] {
        var texts = questions, owners: [Int] = []
        if questionView {
            for (i, q) in questions.enumerated() {
                if let v = QuestionView.question(of: q) { texts.append(v); owners.append(i) }
            }
        }
        let keys = try queryKeys(texts)
        let R = texts.isEmpty ? 0 : keys.count / texts.count
        let found = try texts.indices.map { t in
            let owner = t < questions.count ? t : owners[t - questions.count]
            return try search(Array(keys[(t * R)..<((t + 1) * R)]), question: questions[owner], in: index, k: k)
        }
        var best = found[..<questions.count].map { Retrieved(result: $0, byQuestion: false) }
        for (j, i) in owners.enumerated() where found[questions.count + j].margin > best[i].result.margin {
            best[i] = Retrieved(result: found[questions.count + j], byQuestion: true)
        }
        return best
    }

    /// One query key's search with the subject rule reading `question` (nil: rule not applied).
    public func search(_ key: [Float], question: String?, in index: any KeyIndex, k: Int) throws -> SearchResult {
        guard rule.isOn, let question else { return try index.search(key, k: k, scale: scale) }
        return try index.search(key, k: max(k, SubjectRule.candidates), scale: scale).applying(rule, query: question, k: k)
    }
}

/// Keys held in memory (the evaluation's facts): rows are fact indices from 0, the
/// sentinel's key apart.
public struct FactKeys: KeyIndex {
    /// [N, R]
    public let keys: [Float]
    public let sentinel: [Float]
    public let statements: [String]
    public let subjects: [String?]
    /// nil: every fact is live.
    public let live: [Bool]?

    public init(keys: [Float], sentinel: [Float], statements: [String], subjects: [String?], live: [Bool]? = nil) {
        precondition(subjects.count == statements.count && keys.count == statements.count * sentinel.count)
        (self.keys, self.sentinel, self.statements, self.subjects, self.live) = (keys, sentinel, statements, subjects, live)
    }

    public func search(_ query: [Float], k: Int, scale: Float) throws -> SearchResult {
        let R = sentinel.count, N = statements.count
        guard query.count == R else { throw StorageError.queryShape(expected: R, actual: query.count) }
        return query.withUnsafeBufferPointer { q in
            let s = sentinel.withUnsafeBufferPointer { dot(q.baseAddress!, $0.baseAddress!, R) } * scale
            let hits: [SearchHit] = N == 0 ? [] : keys.withUnsafeBufferPointer { kb in
                if let live {
                    return live.withUnsafeBufferPointer { lb in
                        KeySearch.topK(keys: kb.baseAddress!, dimension: R, rows: 0..<N, live: lb, query: q.baseAddress!, k: k, scale: scale)
                    }
                }
                return KeySearch.topK(keys: kb.baseAddress!, dimension: R, rows: 0..<N, live: nil, query: q.baseAddress!, k: k, scale: scale)
            }
            let candidates = hits.map { h in
                RetrievalHit(row: h.row, score: h.score, fact: Fact(id: "\(h.row)", statement: statements[h.row], subject: subjects[h.row]))
            }
            return SearchResult(hits: candidates.filter { $0.score > s }, candidates: candidates, sentinelScore: s)
        }
    }
}
