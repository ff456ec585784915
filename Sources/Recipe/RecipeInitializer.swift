// Where training starts. The reference initializes the heads at random and, with its
// settings, retrieves nothing after hundreds of steps on this machine (issue #6). We start
// instead exactly where the frozen encoder's cosine similarity with a fixed threshold is:
//
//  * both heads map the (unit-norm) mean block of the features through the *same* random
//    projection A (Johnson–Lindenstrauss: dot products preserved up to small distortion),
//    scaled so reps have norm α: q·k/√R ≈ (α²/√R)·cos, a softmax temperature of ≈ 20;
//  * one coordinate d₀ of every rep is a constant α (bias of the residual layer, whose
//    weights start at zero), so q·k = α²(cos + 1) for every query/fact pair;
//  * the sentinel is (1 + θ)·α on d₀ and zero elsewhere, so q·s = α²(1 + θ): a fact is
//    retrieved iff cos > θ, the fixed-threshold rule the issue measured (θ = 0.6).
//
// The prompt transformer's MLP starts small and random, so it barely moves the LLM at first;
// its attention starts with slot p looking at the (P − 1 − p)-th token from the statement's
// end (bias 4 on that bucket: ≈ 80% of the weight with 16 tokens), so the first prompts read
// as the statement's last P tokens in order — usually the new target — through a value map
// that starts as the identity; training moves the focus and the map from there. With
// `slotConditioning` each slot's own value map starts as the identity and the fact-dependent
// part of the queries at zero, so that structure starts as exactly the same function.
import Foundation
import Posix

public enum RecipeInitializer {
    /// Fills `p` deterministically from `seed`.
    /// - Parameters:
    ///   - meanBlock: index of the mean-pooled block among the four F/4 blocks of the
    ///     features (`[pooler, mean, max, min]` → 1).
    ///   - threshold: the cosine θ above which the initial editor retrieves.
    public static func initialize(_ p: RecipeParameters, seed: UInt64, meanBlock: Int = 1, threshold: Float = 0.6) {
        let c = p.config
        let F = c.featureWidth, R = c.representationWidth, D = F / 4
        let alpha = (20 * Float(R).squareRoot()).squareRoot()
        var rng = SplitMix64(seed: seed)
        p.zero()

        // Shared projection of the mean block into coordinates 1..<R: N(0, α²/(R−1)) entries.
        let sd = alpha / Float(R - 1).squareRoot()
        let projection = (0..<(R * D)).map { _ in rng.normal() * sd }
        for head in [RecipeTensor.knowledgeW1, .queryW1] {
            let w = p[head]
            for r in 1..<R {
                for f in 0..<D { w[r * F + meanBlock * D + f] = projection[r * D + f] }
            }
        }
        for b in [RecipeTensor.knowledgeB2, .queryB2] { p[b][0] = alpha }
        p[.sentinel][0] = (1 + threshold) * alpha

        // The prompt transformer: small random weights, zero biases.
        let w1 = p[.promptW1]
        for i in w1.indices { w1[i] = rng.normal() * (0.01 / Float(R).squareRoot()) }
        let w2 = p[.promptW2]
        for i in w2.indices { w2[i] = rng.normal() * (0.02 / Float(R).squareRoot()) }
        let P = c.promptLength, buckets = RecipeConfig.positionBuckets
        let bias = p[.promptPositionBias]
        for slot in 0..<P { bias[slot * buckets + min(P - 1 - slot, buckets - 1)] = 4 }
        // Every value map the identity ([C, C], or [P, C, C] with slot conditioning) and the
        // query map W_q zero: the slot-conditioned attention starts as the shared one.
        let C = c.modelWidth, value = p[.promptValueW]
        for m in 0..<(value.count / (C * C)) {
            for k in 0..<C { value[m * C * C + k * C + k] = 1 }
        }
    }
}

extension SplitMix64 {
    /// Standard normal (Box–Muller).
    mutating func normal() -> Float {
        let u1 = max(unitDouble(), 1e-300)
        let u2 = unitDouble()
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
}
