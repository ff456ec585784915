// How well the editor retrieves, measured without the LLM: load every fact of a data set,
// then ask with each edit prompt and paraphrase (the right fact should be retrieved) and
// each unrelated prompt (nothing should be, the sentinel must win).
import Storage

public struct RetrievalReport: Sendable, Codable, Equatable {
    public var facts: Int
    /// Right fact retrieved (and above the sentinel) for the edit prompts / paraphrases.
    public var editAccuracy: Double
    public var paraphraseAccuracy: Double
    /// Right fact ranked first among facts, ignoring the sentinel.
    public var editTop1: Double
    public var paraphraseTop1: Double
    /// Some fact retrieved for an unrelated prompt.
    public var falseRetrievalRate: Double
    /// The sentinel's trade-off apart from its calibration: with the sentinel's score raised
    /// or lowered by the margin at which exactly `matchedFalseRate` of the unrelated prompts
    /// retrieve a fact, the share of edit prompts / paraphrases that retrieve the right one.
    public var matchedFalseRate: Double = 0.03
    public var editAtMatchedFalseRate: Double = 0
    public var paraphraseAtMatchedFalseRate: Double = 0
}

public enum RetrievalEvaluation {
    /// What one query retrieves: the fact row (nil: the sentinel won), the best fact row,
    /// and the best fact's and the sentinel's scores.
    public struct Retrieved: Sendable {
        public var retrieved: Int?
        public var best: Int
        public var score: Float
        public var sentinelScore: Float
        /// How far the best fact beats the sentinel (negative: it does not).
        public var margin: Float { score - sentinelScore }
    }

    /// What each of `count` queries retrieves from `keys`.
    public static func retrieve(model: RecipeModel, keys: [Float], queries: [Float], count: Int) -> [Retrieved] {
        let R = model.config.representationWidth
        let facts = keys.count / R
        let sentinel = model.sentinelKey
        let q = model.encodeQueries(features: queries, count: count)
        let scale = model.similarityScale
        return keys.withUnsafeBufferPointer { k in
            (0..<count).map { i in
                q.withUnsafeBufferPointer { qb in
                    let hit = KeySearch.topK(keys: k.baseAddress!, dimension: R, rows: 0..<facts, live: nil,
                                             query: qb.baseAddress! + i * R, k: 1, scale: scale)[0]
                    let s = KeySearch.dot(qb.baseAddress! + i * R, sentinel, R) * scale
                    return Retrieved(retrieved: hit.score > s ? hit.row : nil, best: hit.row, score: hit.score, sentinelScore: s)
                }
            }
        }
    }

    public static func evaluate(model: RecipeModel, set: TrainingSet, features: FeatureTable) -> RetrievalReport {
        let N = set.count
        let keys = model.encodeKeys(features: features.gather(set.examples.map(\.statement)), count: N)
        let edits = retrieve(model: model, keys: keys, queries: features.gather(set.examples.map(\.reliability.prompt)), count: N)
        let paras = retrieve(model: model, keys: keys, queries: features.gather(set.examples.map(\.generality.prompt)), count: N)
        let unrelated = retrieve(model: model, keys: keys, queries: features.gather(set.examples.map(\.locality.prompt)), count: N)
        func rate(_ xs: [Retrieved], _ ok: (Int, Retrieved) -> Bool) -> Double {
            Double(xs.enumerated().filter { ok($0.offset, $0.element) }.count) / Double(max(1, xs.count))
        }
        var report = RetrievalReport(
            facts: N,
            editAccuracy: rate(edits) { $1.retrieved == $0 },
            paraphraseAccuracy: rate(paras) { $1.retrieved == $0 },
            editTop1: rate(edits) { $1.best == $0 },
            paraphraseTop1: rate(paras) { $1.best == $0 },
            falseRetrievalRate: rate(unrelated) { $1.retrieved != nil }
        )
        let threshold = marginThreshold(unrelated.map(\.margin), falseRate: report.matchedFalseRate)
        report.editAtMatchedFalseRate = rate(edits) { $1.best == $0 && $1.margin > threshold }
        report.paraphraseAtMatchedFalseRate = rate(paras) { $1.best == $0 && $1.margin > threshold }
        return report
    }

    /// The factor on the sentinel key at which `falseRate` of `set`'s unrelated prompts
    /// retrieve a fact, with all of `set`'s facts loaded: the sentinel's place calibrated on
    /// data the caller holds out from training (never the data it is measured on). A query's
    /// sentinel score is linear in the key, so scaling the key moves every query's threshold
    /// in proportion and needs nothing at query time. Queries whose sentinel score is not
    /// positive count against the rate as retrieving. Nil when no factor reaches the rate
    /// (an empty set, more such queries than the rate allows, or a rate every query meets).
    public static func sentinelScale(model: RecipeModel, set: TrainingSet, features: FeatureTable, falseRate: Double) -> Float? {
        let N = set.count
        guard N > 0 else { return nil }
        let keys = model.encodeKeys(features: features.gather(set.examples.map(\.statement)), count: N)
        let unrelated = retrieve(model: model, keys: keys, queries: features.gather(set.examples.map(\.locality.prompt)), count: N)
        // Query u retrieves while factor < score_u / sentinel_u (for sentinel_u > 0).
        var critical: [Float] = []
        var always = 0
        for u in unrelated {
            if u.sentinelScore > 0 { critical.append(u.score / u.sentinelScore) } else if u.margin >= 0 { always += 1 }
        }
        critical.sort(by: >)
        let allowed = Int(falseRate * Double(N)) - always
        guard allowed >= 0, allowed < critical.count else { return nil }
        // Between the last query let through and the first one held back (no query on the edge).
        let above = allowed > 0 ? critical[allowed - 1] : critical[0] * 1.01
        return (critical[allowed] + above) / 2
    }

    /// The smallest margin above which at most `falseRate` of `unrelated` margins lie.
    static func marginThreshold(_ unrelated: [Float], falseRate: Double) -> Float {
        let sorted = unrelated.sorted(by: >)
        let allowed = Int(falseRate * Double(sorted.count))
        return allowed < sorted.count ? sorted[allowed] : -.infinity
    }
}
