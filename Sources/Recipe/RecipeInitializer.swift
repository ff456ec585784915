// Where training starts. The reference initializes the heads at random and, with its
// settings, retrieves nothing after hundreds of steps on this machine (issue #6). We start
// the heads where the frozen encoder already retrieves well instead: both heads map the
// mean-pooled sentence vector through the *same* random projection (Johnson–Lindenstrauss:
// dot products are preserved up to a small distortion), the other feature blocks and the
// residual layers start near zero, and the sentinel starts at zero, so that at step 0 query
// and knowledge reps agree the way MiniLM's sentence vectors agree.

public enum RecipeInitializer {
    /// Fills `p` deterministically from `seed`.
    /// - Parameter meanBlock: index of the mean-pooled block among the four F/4 blocks of
    ///   the features (`[pooler, mean, max, min]` → 1).
    public static func initialize(_ p: RecipeParameters, seed: UInt64, meanBlock: Int = 1) {
        let c = p.config
        let F = c.featureWidth, R = c.representationWidth, D = F / 4
        var rng = SplitMix64(seed: seed)
        p.zero()

        // Shared projection of the mean block: N(0, 1/R) entries, so |A x| ≈ |x|.
        let projection = (0..<(R * D)).map { _ in rng.normal() / Float(R).squareRoot() }
        for head in [RecipeTensor.knowledgeW1, .queryW1] {
            let w = p[head]
            for r in 0..<R {
                for f in 0..<F {
                    let block = f / D
                    w[r * F + f] = block == meanBlock
                        ? projection[r * D + (f - block * D)]
                        : rng.normal() * 1e-3
                }
            }
        }
        // Residual layers and the prompt transformer: small random, biases zero. The output
        // projection starts small so early prompts perturb the LLM only slightly.
        for t in [RecipeTensor.knowledgeW2, .queryW2, .promptW1] {
            let w = p[t]
            for i in w.indices { w[i] = rng.normal() * (0.01 / Float(R).squareRoot()) }
        }
        let w2 = p[.promptW2]
        for i in w2.indices { w2[i] = rng.normal() * (0.02 / Float(R).squareRoot()) }
    }
}

/// SplitMix64: a tiny, fast, well-mixed generator; deterministic across platforms, which
/// `SystemRandomNumberGenerator` is not.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    public mutating func uniform() -> Float { Float(Double(next() >> 11) / Double(1 << 53)) }

    /// Standard normal (Box–Muller).
    public mutating func normal() -> Float {
        let u1 = max(Double(next() >> 11) / Double(1 << 53), 1e-300)
        let u2 = Double(next() >> 11) / Double(1 << 53)
        return Float((-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2))
    }
}

import Foundation
private func _log(_ x: Double) -> Double { Foundation.log(x) }
private func _cos(_ x: Double) -> Double { Foundation.cos(x) }
