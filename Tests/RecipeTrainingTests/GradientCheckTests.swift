import Testing
import Foundation
import Recipe
import RecipeTestSupport
import RecipeTraining

@Suite struct GradientCheckTests {
    /// L = Σ w ⊙ prompt(head_k(f), statement tokens) with every parameter drawn at random
    /// (`seed`), statements of 4 tokens (the maximum), 1, 0 and 3: the analytic gradients and,
    /// per knowledge-head and prompt-transformer tensor, the largest relative error against
    /// central differences of `step`.
    func promptTransformerCheck(_ c: RecipeConfig, seed: UInt64, step: Float) throws
        -> (grads: RecipeParameters, worst: [RecipeTensor: Float]) {
        let params = try RecipeParameters(config: c, values: uniform(RecipeParameters(config: c).count, seed: seed, scale: 0.5))
        let N = 4, T = c.statementTokens, C = c.modelWidth
        let f = uniform(N * c.featureWidth, seed: seed + 1)
        let w = uniform(N * c.promptLength * C, seed: seed + 2)
        let lengths = [4, 1, 0, 3]
        var e = uniform(N * T * C, seed: seed + 3, scale: 2)
        for i in 0..<N { for t in lengths[i]..<T { for k in 0..<C { e[(i * T + t) * C + k] = 0 } } }
        let st = StatementTokens(maxTokens: T, width: C, embeddings: e, lengths: lengths)

        func loss() -> Float {
            let (r, _) = RecipeNetwork.headForward(params, .knowledge, features: f, N: N)
            let (p, _) = RecipeNetwork.promptForward(params, reps: r, statements: st, N: N)
            return zip(p, w).reduce(0) { $0 + $1.0 * $1.1 }
        }
        let grads = RecipeParameters(config: c)
        let (r, hc) = RecipeNetwork.headForward(params, .knowledge, features: f, N: N)
        let (_, pc) = RecipeNetwork.promptForward(params, reps: r, statements: st, N: N)
        let dr = RecipeNetwork.promptBackward(params, grads, dPrompts: w, cache: pc, N: N)
        RecipeNetwork.headBackward(params, grads, .knowledge, dReps: dr, cache: hc, N: N)

        var worst: [RecipeTensor: Float] = [:]
        for t in RecipeTensor.allCases where t.isKnowledgeHead || t.isPromptTransformer {
            for i in params.range(t) {
                let old = params.base[i]
                params.base[i] = old + step; let lp = loss()
                params.base[i] = old - step; let lm = loss()
                params.base[i] = old
                worst[t] = max(worst[t] ?? 0, relativeError(grads.base[i], (lp - lm) / (2 * step), floor: 1e-2))
            }
        }
        return (grads, worst)
    }

    /// Every parameter of the knowledge head and the prompt transformer (MLP and attention).
    @Test func knowledgeHeadAndPromptTransformer() throws {
        let (grads, worst) = try promptTransformerCheck(smallConfig(), seed: 11, step: 1e-3)
        let largest = worst.values.max()!
        #expect(largest < 2e-2, "largest relative gradient error \(largest)")
        #expect(grads[.promptQuery].contains { $0 != 0 } && grads[.promptPositionBias].contains { $0 != 0 })
        for t in RecipeTensor.allCases where t.name.hasPrefix("query") || t == .sentinel {
            #expect(grads[t].allSatisfy { $0 == 0 }, "\(t.name) must get no gradient")
        }
    }

    /// The same check with `slotConditioning`: per-slot value maps V_j, v_j and queries
    /// u + W_q x. Every tensor, W_q included, starts random (not at its zero/identity
    /// initialization), so the gradient from the queries back into the hidden layer x — and
    /// through it into promptW1/B1 and the knowledge head — is part of what is checked. The
    /// sharper attention makes the loss's float rounding show at a 1e-3 step (errors up to 3%
    /// that shrink with a larger step), hence 1e-2 as in the contrastive check.
    @Test func slotConditionedPromptTransformer() throws {
        var c = smallConfig()
        c.slotConditioning = true
        let (grads, worst) = try promptTransformerCheck(c, seed: 31, step: 1e-2)
        #expect(grads[.promptQueryW].count == c.promptLength * c.modelWidth * c.representationWidth)
        #expect(grads[.promptValueW].count == c.promptLength * c.modelWidth * c.modelWidth)
        let largest = worst.values.max()!
        print("slot-conditioned prompt transformer: largest relative gradient error \(largest); "
              + RecipeTensor.allCases.compactMap { t in worst[t].map { "\(t.name) \($0)" } }.joined(separator: ", "))
        #expect(largest < 2e-2, "largest relative gradient error \(largest)")
        for t in [RecipeTensor.promptQueryW, .promptQuery, .promptValueW, .promptValueB, .promptPositionBias] {
            #expect(grads[t].contains { $0 != 0 }, "\(t.name) gets no gradient")
        }
        // Every slot's value map gets its own gradient.
        let CC = c.modelWidth * c.modelWidth
        for j in 0..<c.promptLength {
            #expect(grads[.promptValueW][(j * CC)..<((j + 1) * CC)].contains { $0 != 0 }, "slot \(j)'s value map gets no gradient")
        }
    }

    /// With and without the subject rule's score offsets (constants: the gradient is the same
    /// function of the reps, evaluated at shifted logits).
    @Test(arguments: [false, true]) func contrastiveLossGradients(withOffsets: Bool) {
        var c = smallConfig()
        c.contrastiveHingeScale = 1e9  // hinge always open: the loss is smooth everywhere
        c.queryKnowledgeT = 3
        c.queryPrototypeT = 2
        c.unrelatedLambda = 0.4  // the weighted term's gradient is checked too
        let (B, U, R) = (4, 3, c.representationWidth)
        // q1, q2, q3, knowledge, sentinel
        var inputs = [uniform(B * R, seed: 21), uniform(B * R, seed: 22), uniform(U * R, seed: 23),
                      uniform(B * R, seed: 24), uniform(R, seed: 25)]
        let offsets = withOffsets ? uniform((2 * B + U) * B, seed: 26, scale: 0.5) : nil
        func run(_ v: [[Float]]) -> ContrastiveLoss {
            ContrastiveLoss(q1: v[0], q2: v[1], q3: v[2], knowledge: v[3], sentinel: v[4], B: B, U: U, R: R, config: c, offsets: offsets)
        }
        let out = run(inputs)
        #expect(out.q2k > 0 && out.q2sRelated > 0 && out.q2sUnrelated > 0)
        let analytic = [out.dQ1, out.dQ2, out.dQ3, out.dKnowledge, out.dSentinel]
        var worst: Float = 0
        for a in inputs.indices {
            for i in inputs[a].indices {
                let old = inputs[a][i]
                inputs[a][i] = old + 1e-2; let lp = run(inputs).total
                inputs[a][i] = old - 1e-2; let lm = run(inputs).total
                inputs[a][i] = old
                // Floor 3e-3: the Float loss (~4) moves in steps of ~5e-7, so a central
                // difference over 2e-2 is only good to ~2.5e-5 absolute.
                worst = max(worst, relativeError(analytic[a][i], (lp - lm) / 2e-2, floor: 3e-3))
            }
        }
        #expect(worst < 2e-2, "largest relative gradient error \(worst)")
    }

    @Test func offsetsShiftTheScoresOfFacts() {
        var c = smallConfig()
        c.contrastiveHingeScale = 1e9
        let (B, U, R) = (3, 2, c.representationWidth)
        let q1 = uniform(B * R, seed: 31), q2 = uniform(B * R, seed: 32), q3 = uniform(U * R, seed: 33)
        let k = uniform(B * R, seed: 34), s = uniform(R, seed: 35)
        let plain = ContrastiveLoss(q1: q1, q2: q2, q3: q3, knowledge: k, sentinel: s, B: B, U: U, R: R, config: c)
        // Each edit query's own fact far ahead, every fact far behind for the unrelated queries.
        var offsets = [Float](repeating: 0, count: (2 * B + U) * B)
        for i in 0..<B { offsets[i * B + i] = 100 }
        for j in (2 * B)..<(2 * B + U) { for f in 0..<B { offsets[j * B + f] = -100 } }
        let shifted = ContrastiveLoss(q1: q1, q2: q2, q3: q3, knowledge: k, sentinel: s, B: B, U: U, R: R, config: c, offsets: offsets)
        #expect(plain.q2k > 0.1 && plain.q2sUnrelated > 0.1)
        #expect(shifted.q2k < 1e-6 && shifted.q2sUnrelated < 1e-6 && shifted.q2sRelated == plain.q2sRelated)
    }

    @Test func hingeDropsRowsThatAlreadyWin() {
        var c = smallConfig()
        c.contrastiveHingeScale = 1.5
        let R = c.representationWidth
        // One fact, one unrelated query pointing exactly at the sentinel: p(sentinel) dominates,
        // so the unrelated term is hinged off and contributes nothing.
        let s: [Float] = (0..<R).map { $0 == 0 ? 20 : 0 }
        let k: [Float] = (0..<R).map { $0 == 1 ? 20 : 0 }
        let q3 = s
        let out = ContrastiveLoss(q1: k, q2: k, q3: q3, knowledge: k, sentinel: s, B: 1, U: 1, R: R, config: c)
        #expect(out.q2sUnrelated == 0)
        #expect(out.dQ3.allSatisfy { $0 == 0 })
    }
}
