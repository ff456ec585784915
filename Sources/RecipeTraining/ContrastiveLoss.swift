// RECIPE's contrastive retrieval losses with their gradients (qizhou000/RECIPE
// `editors/recipe/recipe.py: __train_a_batch__`). Similarities are scaled dot products
// q·k / √R, multiplied by a temperature before the softmax.
//
//   q2k        (q1: edit or paraphrase query i) softmax over [K; s], target K_i.
//   q2s-rg     (q2: the other of the pair) softmax over K with K_i replaced by s, target s:
//              the sentinel must beat every *wrong* fact for a related query.
//   q2s-loc    (q3: unrelated query) softmax over [K; s], target s.
//
// With `offsets` (the subject rule, `SubjectRule`), query row j's similarity to fact c gains
// offsets[j·B + c] before the temperature, as retrieval scores it (rows: q1, then q2, then
// q3); the sentinel's similarity has none. The offsets are constants: no gradient.
//
// The two sentinel terms are hinged: a row counts only while its target probability is
// below `hinge ×` the runner-up, and the mean is over counted rows (0 if none). q2s-loc is
// weighted by the config's `unrelatedLambda` (in `total` and in the gradients).
import Foundation
import Recipe

public struct ContrastiveLoss {
    /// Loss terms (already averaged).
    public var q2k: Float = 0
    public var q2sRelated: Float = 0
    public var q2sUnrelated: Float = 0
    public var unrelatedWeight: Float = 1
    public var total: Float { q2k + q2sRelated + unrelatedWeight * q2sUnrelated }
    /// Gradients of `total` w.r.t. q1 [B, R], q2 [B, R], q3 [U, R], knowledge [B, R], sentinel [R].
    public var dQ1: [Float] = []
    public var dQ2: [Float] = []
    public var dQ3: [Float] = []
    public var dKnowledge: [Float] = []
    public var dSentinel: [Float] = []

    /// - Parameters:
    ///   - q1, q2: [B, R] query reps (row i belongs to fact i)
    ///   - q3: [U, R] unrelated query reps
    ///   - knowledge: [B, R] knowledge reps
    ///   - sentinel: [R]
    ///   - offsets: [2B + U, B] score offsets of the queries' facts (nil: none)
    public init(q1: [Float], q2: [Float], q3: [Float], knowledge: [Float], sentinel: [Float],
                B: Int, U: Int, R: Int, config: RecipeConfig, offsets: [Float]? = nil) {
        precondition(offsets.map { $0.count == (2 * B + U) * B } ?? true, "offsets are [2B + U, B]")
        dQ1 = [Float](repeating: 0, count: B * R)
        dQ2 = dQ1
        dQ3 = [Float](repeating: 0, count: U * R)
        dKnowledge = dQ1
        dSentinel = [Float](repeating: 0, count: R)
        let scale = 1 / Float(R).squareRoot()
        let s = B  // candidate index meaning "the sentinel"
        let all = Array(0...B)

        var dK = dKnowledge, dS = dSentinel
        q2k = Self.term(queries: q1, dQueries: &dQ1, dKnowledge: &dK, dSentinel: &dS, rows: B, candidates: { _ in all }, target: { $0 },
                   temperature: config.queryKnowledgeT, scale: scale, hinge: nil, offsets: offsets, firstRow: 0,
                   knowledge: knowledge, sentinel: sentinel, R: R, eps: config.eps)
        q2sRelated = Self.term(queries: q2, dQueries: &dQ2, dKnowledge: &dK, dSentinel: &dS, rows: B,
                          candidates: { i in (0..<B).map { $0 == i ? s : $0 } }, target: { $0 },
                          temperature: config.queryPrototypeT, scale: scale, hinge: config.contrastiveHingeScale,
                          offsets: offsets, firstRow: B, knowledge: knowledge, sentinel: sentinel, R: R, eps: config.eps)
        unrelatedWeight = config.unrelatedLambda
        q2sUnrelated = Self.term(queries: q3, dQueries: &dQ3, dKnowledge: &dK, dSentinel: &dS, rows: U, candidates: { _ in all }, target: { _ in B },
                            temperature: config.queryPrototypeT, scale: scale, hinge: config.contrastiveHingeScale,
                            weight: unrelatedWeight, offsets: offsets, firstRow: 2 * B,
                            knowledge: knowledge, sentinel: sentinel, R: R, eps: config.eps)
        dKnowledge = dK
        dSentinel = dS
    }

    /// One InfoNCE term: mean over counted rows of −log(p[target] + eps), its gradient
    /// scaled by `weight`. `candidates(i)` lists, for row i, the candidate indices (B =
    /// sentinel); `target(i)` is the position in that list whose probability is maximized.
    /// Logits are `temperature × (scale × q·k + offset)`, the offset of row i being row
    /// `firstRow + i` of `offsets`.
    private static func term(queries: [Float], dQueries: inout [Float], dKnowledge: inout [Float], dSentinel: inout [Float], rows: Int,
                               candidates: (Int) -> [Int], target: (Int) -> Int,
                               temperature multiplier: Float, scale: Float, hinge: Float?, weight: Float = 1, offsets: [Float]?, firstRow: Int,
                               knowledge: [Float], sentinel: [Float], R: Int, eps: Float) -> Float {
        let B = knowledge.count / max(R, 1)
        let temperature = multiplier * scale
        var probs: [[Float]] = []
        var counted: [Bool] = []
        for i in 0..<rows {
            let cands = candidates(i)
            var logits = cands.map { c -> Float in
                var d: Float = 0
                for r in 0..<R { d += queries[i * R + r] * (c == B ? sentinel[r] : knowledge[c * R + r]) }
                let offset = c == B ? 0 : offsets.map { $0[(firstRow + i) * B + c] } ?? 0
                return d * temperature + offset * multiplier
            }
            let m = logits.max() ?? 0
            var sum: Float = 0
            for j in logits.indices { logits[j] = expf(logits[j] - m); sum += logits[j] }
            for j in logits.indices { logits[j] /= sum }
            let t = target(i)
            var include = true
            if let hinge {
                let second = logits.count > 1 ? logits.sorted(by: >)[1] : 0
                include = logits[t] < second * hinge
            }
            probs.append(logits)
            counted.append(include)
        }
        let n = counted.filter { $0 }.count
        guard n > 0 else { return 0 }
        var loss: Float = 0
        for i in 0..<rows where counted[i] {
            let p = probs[i], t = target(i), cands = candidates(i)
            loss -= logf(p[t] + eps)
            // d(−log(p_t + eps))/dlogit_j = −p_t/(p_t + eps) · (δ_tj − p_j), averaged over n rows.
            let g = -p[t] / (p[t] + eps) / Float(n) * weight
            for (j, c) in cands.enumerated() {
                let dlogit = g * ((j == t ? 1 : 0) - p[j]) * temperature
                if dlogit == 0 { continue }
                for r in 0..<R {
                    let kv = c == B ? sentinel[r] : knowledge[c * R + r]
                    dQueries[i * R + r] += dlogit * kv
                    if c == B { dSentinel[r] += dlogit * queries[i * R + r] } else { dKnowledge[c * R + r] += dlogit * queries[i * R + r] }
                }
            }
        }
        return loss / Float(n)
    }
}

