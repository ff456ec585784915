// Query pooling (`RecipeConfig.queryTokens`, `queryPoolingHeads`): the query head's
// attention over the query's last token states, checked against finite differences, and the
// conversion of an editor without it, which must retrieve exactly as before.
import Testing
import TestSupport
import Recipe

@Suite struct QueryPoolingTests {
    static func config(heads: Int = 2, tokens: Int = 3) -> RecipeConfig {
        var c = smallConfig()
        c.queryTokens = tokens
        c.queryPoolingHeads = heads
        return c
    }

    /// Query head input rows [N, F + 1 + T·D] for token counts `lengths` (zero beyond them).
    static func rows(_ c: RecipeConfig, lengths: [Int], seed: UInt64) -> [Float] {
        let F = c.featureWidth, D = F / 4, T = c.queryTokens, W = c.queryInputWidth
        var x = uniform(lengths.count * W, seed: seed, scale: 1.5)
        for (i, n) in lengths.enumerated() {
            x[i * W + F] = Float(n)
            for k in (F + 1 + n * D)..<W { x[i * W + k] = 0 }
        }
        precondition(W == F + 1 + T * D)
        return x
    }

    /// L = Σ w ⊙ head_q(rows) with every parameter random (W_p too, so that the attention
    /// queries and position biases get gradients), rows of 3 (all), 1, 0 and 2 tokens: each
    /// query-head tensor's largest relative error against central differences.
    @Test func queryHeadGradientsMatchFiniteDifferences() throws {
        let c = Self.config()
        try c.validate()
        let params = try RecipeParameters(config: c, values: uniform(RecipeParameters(config: c).count, seed: 41, scale: 0.5))
        let N = 4, R = c.representationWidth
        let x = Self.rows(c, lengths: [3, 1, 0, 2], seed: 42)
        let w = uniform(N * R, seed: 43)
        func loss() -> Float {
            zip(RecipeNetwork.headForward(params, .query, features: x, N: N).reps, w).reduce(0) { $0 + $1.0 * $1.1 }
        }
        let grads = RecipeParameters(config: c)
        let (_, cache) = RecipeNetwork.headForward(params, .query, features: x, N: N)
        RecipeNetwork.headBackward(params, grads, .query, dReps: w, cache: cache, N: N)

        let tensors: [RecipeTensor] = [.queryW1, .queryB1, .queryW2, .queryB2, .queryPoolQuery, .queryPoolPositionBias, .queryPoolW]
        var worst: [String] = []
        var largest: Float = 0
        let step: Float = 1e-2
        for t in tensors {
            var e: Float = 0
            for i in params.range(t) {
                let old = params.base[i]
                params.base[i] = old + step; let lp = loss()
                params.base[i] = old - step; let lm = loss()
                params.base[i] = old
                e = max(e, relativeError(grads.base[i], (lp - lm) / (2 * step), floor: 1e-2))
            }
            worst.append("\(t.name) \(e)")
            largest = max(largest, e)
            #expect(grads[t].contains { $0 != 0 }, "\(t.name) gets no gradient")
        }
        print("query pooling: largest relative gradient error \(largest); " + worst.joined(separator: ", "))
        #expect(largest < 2e-2, "largest relative gradient error \(largest)")
        // Only the distance buckets a token of these lengths falls in (0, 1, 2) get a gradient.
        let buckets = RecipeConfig.positionBuckets
        for j in 0..<c.queryPoolingHeads {
            #expect(grads[.queryPoolPositionBias][(j * buckets + 3)..<((j + 1) * buckets)].allSatisfy { $0 == 0 })
        }
    }

    /// An editor converted to query pooling scores every query as before (W_p is zero), the
    /// knowledge keys are untouched, and converting it back or to other pooling is refused.
    @Test func aConvertedEditorRetrievesAsBefore() throws {
        let plain = smallConfig()
        let original = try RecipeParameters(config: plain, values: uniform(RecipeParameters(config: plain).count, seed: 51, scale: 0.5))
        let pooled = try original.converted(to: Self.config())
        let N = 4, F = plain.featureWidth, W = pooled.config.queryInputWidth
        let x = Self.rows(pooled.config, lengths: [3, 1, 0, 2], seed: 52)
        let features = (0..<N).flatMap { x[($0 * W)..<($0 * W + F)] }
        let before = try RecipeModel(parameters: original), after = try RecipeModel(parameters: pooled)
        #expect(after.encodeQueries(features: x, count: N) == before.encodeQueries(features: features, count: N))
        #expect(after.encodeKeys(features: features, count: N) == before.encodeKeys(features: features, count: N))
        #expect(after.sentinelKey == before.sentinelKey)
        #expect(throws: RecipeError.self) { try pooled.converted(to: plain) }
        #expect(throws: RecipeError.self) { try pooled.converted(to: Self.config(heads: 3)) }
        // Once W_p has moved, the tokens count.
        pooled[.queryPoolW][0] = 1
        #expect(after.encodeQueries(features: x, count: N) != before.encodeQueries(features: features, count: N))
    }

    @Test func configRequiresBothOrNeither() {
        var c = smallConfig()
        c.queryTokens = 3
        #expect(throws: RecipeError.self) { try c.validate() }
        c.queryPoolingHeads = 1
        #expect(throws: Never.self) { try c.validate() }
        #expect(c.queryInputWidth == c.featureWidth + 1 + 3 * c.featureWidth / 4)
    }
}
