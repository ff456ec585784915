// The paper's editing metrics, defined as RECIPE's public evaluation code defines them
// (qizhou000/RECIPE `utils/data.py: prompts_target_to_x_y_mask` and
// `evaluation/editor_eval.py: accuracy_and_prediction`), plus the stricter figures this
// project adds: generation exact match and retrieval accuracy.
import Recipe

public enum EditMetrics {
    /// Fraction of scored positions whose argmax prediction equals the label
    /// (Reliability and Generality). `predictions[i]` is the argmax after `input[...i]`.
    /// A case with no scored position scores 0, as an empty target cannot be "recalled".
    public static func tokenAccuracy(predictions: [Int], case c: TeacherForcedCase) -> Double {
        guard !c.scored.isEmpty else { return 0 }
        var hits = 0
        for i in c.scored where predictions[i] == c.labels[i] { hits += 1 }
        return Double(hits) / Double(c.scored.count)
    }

    /// Fraction of scored positions whose argmax after the edit equals the argmax before it
    /// (Locality).
    public static func agreement(before: [Int], after: [Int], case c: TeacherForcedCase) -> Double {
        guard !c.scored.isEmpty else { return 1 }
        var same = 0
        for i in c.scored where before[i] == after[i] { same += 1 }
        return Double(same) / Double(c.scored.count)
    }

    /// The answer mentions the target anywhere (case-sensitive but for the target's first
    /// letter, which may be upper-case as at a sentence's start: "Geometry." answers a
    /// question whose target is "geometry"; leading whitespace of the target dropped).
    public static func mentions(generated: String, target: String) -> Bool {
        spellings(of: target).contains { generated.contains($0) }
    }

    /// Generation exact match: the greedy continuation, with leading whitespace dropped,
    /// starts with the target (without its leading whitespace; its first letter may be
    /// upper-case, as `mentions`).
    public static func generationMatches(generated: String, target: String) -> Bool {
        let answer = generated.drop(while: { $0.isWhitespace })
        return spellings(of: target).contains { answer.hasPrefix($0) }
    }

    /// The target without its leading whitespace, and with its first letter upper-cased
    /// when that differs; none for an empty target.
    static func spellings(of target: String) -> [Substring] {
        let t = target.drop(while: { $0.isWhitespace })
        guard let first = t.first else { return [] }
        let upper = first.uppercased() + t.dropFirst()
        return upper == t ? [t] : [t, Substring(upper)]
    }
}
