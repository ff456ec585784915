// How well the editor retrieves, measured without the LLM: load every fact of a data set,
// then ask with each edit prompt and paraphrase (the right fact should be retrieved) and
// each unrelated prompt (nothing should be, the sentinel must win).
import Recipe
import RecipeTraining
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
    /// The part of `falseRetrievalRate` where the unrelated prompt asks the retrieved fact's
    /// own question: it names that fact's subject and expects that fact's answer before its
    /// edit (CounterFact's neighbourhood prompts sometimes ask another dev edit's question,
    /// "Nintendo DS, developed by" → Nintendo, with "Nintendo DS is developed by Nissan" also
    /// loaded). Retrieving the edit is then right, though the benchmark counts it false.
    public var falseRetrievalSameQuestion: Double = 0
    /// The sentinel's trade-off apart from its calibration: with the sentinel's score raised
    /// or lowered by the margin at which exactly `matchedFalseRate` of the unrelated prompts
    /// retrieve a fact, the share of edit prompts / paraphrases that retrieve the right one.
    public var matchedFalseRate: Double = 0.03
    public var editAtMatchedFalseRate: Double = 0
    public var paraphraseAtMatchedFalseRate: Double = 0
}

/// One query of a retrieval evaluation: what it retrieved and why (`recipe eval --retrieval
/// --details`).
public struct RetrievalDetail: Sendable, Codable, Equatable {
    /// "edit", "paraphrase" or "unrelated".
    public var kind: String
    /// The query's sample (its own fact's index among the set's facts).
    public var sample: Int
    public var prompt: String
    /// The retrieved fact (nil: the sentinel won) and the best fact with their scores.
    public var retrieved: Int?
    public var best: Int?
    public var bestScore: Float
    public var sentinelScore: Float
    /// "whole" or "question" (`QuestionView`).
    public var view: String
}

public enum RetrievalEvaluation {
    /// What each of `set`'s `queries` retrieves from `keys` (the set's facts in order), with
    /// the editor's subject rule unless `rule` replaces it, and the question view unless
    /// `questionView` is off (`features` holds the views' texts: `TrainingSet.texts`; for an
    /// editor with its own query encoder, `queryFeatures` holds `TrainingSet.queryTexts`').
    static func retrieve(model: RecipeModel, keys: [Float], set: TrainingSet, features: FeatureTable, queryFeatures: FeatureTable?,
                         queries: [String], rule: SubjectRule? = nil, questionView: Bool = true) -> [Retrieval] {
        let index = FactKeys(keys: keys, sentinel: model.sentinelKey, statements: set.examples.map(\.statement),
                             subjects: set.examples.map(\.subject))
        let table = queryFeatures ?? features
        let retriever = Retriever(scale: model.similarityScale, rule: rule ?? model.subjectRule, questionView: questionView) { texts in
            model.encodeQueries(features: table.gather(texts), count: texts.count)
        }
        // The keys have the right shape by construction: `try!` traps only on a programming error.
        return try! retriever.retrieve(queries, in: index).map(Retrieval.init)
    }

    /// - Parameters:
    ///   - detail: called with every query's outcome (edits, then paraphrases, then unrelated)
    ///   - queryFeatures: for an editor with its own query encoder, its features of `set.queryTexts`
    public static func evaluate(model: RecipeModel, set: TrainingSet, features: FeatureTable, queryFeatures: FeatureTable? = nil,
                                rule: SubjectRule? = nil, questionView: Bool = true,
                                detail: ((RetrievalDetail) -> Void)? = nil) -> RetrievalReport {
        let N = set.count
        let keys = model.encodeKeys(features: features.gather(set.examples.map(\.statement)), count: N)
        func retrieved(_ queries: [String]) -> [Retrieval] {
            retrieve(model: model, keys: keys, set: set, features: features, queryFeatures: queryFeatures, queries: queries, rule: rule,
                     questionView: questionView)
        }
        let edits = retrieved(set.examples.map(\.reliability.prompt))
        let paras = retrieved(set.examples.map(\.generality.prompt))
        let unrelated = retrieved(set.examples.map(\.locality.prompt))
        if let detail {
            for (kind, rs, prompt) in [("edit", edits, \TrainingExample.reliability.prompt), ("paraphrase", paras, \.generality.prompt),
                                       ("unrelated", unrelated, \.locality.prompt)] {
                for (i, r) in rs.enumerated() {
                    detail(RetrievalDetail(kind: kind, sample: i, prompt: set.examples[i][keyPath: prompt], retrieved: r.fact, best: r.best,
                                           bestScore: r.bestScore, sentinelScore: r.sentinelScore, view: r.byQuestion ? "question" : "whole"))
                }
            }
        }
        func rate(_ xs: [Retrieval], _ ok: (Int, Retrieval) -> Bool) -> Double {
            Double(xs.enumerated().filter { ok($0.offset, $0.element) }.count) / Double(max(1, xs.count))
        }
        var report = RetrievalReport(
            facts: N,
            editAccuracy: rate(edits) { $1.fact == $0 },
            paraphraseAccuracy: rate(paras) { $1.fact == $0 },
            editTop1: rate(edits) { $1.best == $0 },
            paraphraseTop1: rate(paras) { $1.best == $0 },
            falseRetrievalRate: rate(unrelated) { $1.fact != nil }
        )
        report.falseRetrievalSameQuestion = rate(unrelated) { i, r in
            guard let j = r.fact, j != i, let truth = set.examples[j].groundTruth else { return false }
            let e = set.examples[i]
            return SubjectRule.names(set.examples[j].subject, in: SubjectRule.Text(e.locality.prompt)) == true
                && FactText.key(truth) == FactText.key(e.locality.target)
        }
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
    public static func sentinelScale(model: RecipeModel, set: TrainingSet, features: FeatureTable, queryFeatures: FeatureTable? = nil,
                                     falseRate: Double) -> Float? {
        let N = set.count
        guard N > 0 else { return nil }
        let keys = model.encodeKeys(features: features.gather(set.examples.map(\.statement)), count: N)
        let unrelated = retrieve(model: model, keys: keys, set: set, features: features, queryFeatures: queryFeatures,
                                 queries: set.examples.map(\.locality.prompt))
        // Query u retrieves while factor < score_u / sentinel_u (for sentinel_u > 0).
        var critical: [Float] = []
        var always = 0
        for u in unrelated {
            if u.sentinelScore > 0 { critical.append(u.bestScore / u.sentinelScore) } else if u.margin >= 0 { always += 1 }
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
