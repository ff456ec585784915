// The editor's own query encoder layer (`RecipeConfig.queryEncoderLayers`, `QueryEncoder`):
// the head's gradient into its features, an initialized layer that encodes exactly as the
// frozen encoder, and retrieval-only training steps that move the layer and resume exactly.
import Foundation
import Models
import Recipe
import RecipeTestSupport
import RecipeTraining
import Testing
import TestSupport

@Suite(.serialized) struct QueryEncoderTests {
    /// L = Σ w ⊙ head_q(f): the gradient of the raw features (through each block's scaling to
    /// unit norm) against central differences.
    @Test func headFeatureGradientsMatchFiniteDifferences() throws {
        let c = smallConfig()
        let params = try RecipeParameters(config: c, values: uniform(RecipeParameters(config: c).count, seed: 61, scale: 0.5))
        let N = 3
        var f = uniform(N * c.featureWidth, seed: 62, scale: 2)
        let w = uniform(N * c.representationWidth, seed: 63)
        func loss(_ f: [Float]) -> Double {
            zip(RecipeNetwork.headForward(params, .query, features: f, N: N).reps, w).reduce(0) { $0 + Double($1.0 * $1.1) }
        }
        let (_, cache) = RecipeNetwork.headForward(params, .query, features: f, N: N)
        let df = try #require(RecipeNetwork.headBackward(params, RecipeParameters(config: c), .query, dReps: w, cache: cache, N: N,
                                                         wantFeatures: true))
        var largest: Float = 0
        for i in f.indices {
            let old = f[i]
            f[i] = old + 1e-2; let lp = loss(f)
            f[i] = old - 1e-2; let lm = loss(f)
            f[i] = old
            largest = max(largest, relativeError(df[i], Float((lp - lm) / 2e-2), floor: 1e-2))
        }
        print("query head: largest relative error of the feature gradient \(largest)")
        #expect(largest < 2e-2)
    }

    static var config: RecipeConfig {
        var c = RecipeConfig()
        c.representationWidth = 64
        c.headLearningRate = 1e-3
        c.encoderLearningRate = 1e-4
        c.queryEncoderLayers = 1
        c.learningRateDecaySteps = 6
        return c
    }

    /// Initialized from the encoder's own top layer, the editor encodes queries as the frozen
    /// encoder does; an editor converted to it keeps everything else, and cannot go back.
    @Test func initializedLayerEncodesAsTheFrozenEncoder() throws {
        let encoder = try BertEncoder(directory: Fixtures.miniLM)
        var plain = Self.config
        plain.queryEncoderLayers = 0
        let original = RecipeParameters(config: plain)
        RecipeInitializer.initialize(original, seed: 3)
        let params = try original.converted(to: Self.config)
        #expect(params[.queryEncoder].allSatisfy { $0 == 0 } && params[.queryEncoder].count > 1_000_000)
        #expect(Array(params[.queryW1]) == Array(original[.queryW1]) && Array(params[.sentinel]) == Array(original[.sentinel]))
        let q = try QueryEncoder(encoder: encoder, parameters: params)
        q.initialize()
        let texts = ["Toko Yasuda plays the", "It rained all day. What does Toko Yasuda play? They play"]
        let diff = zip(q.features(texts), encoder.featureMatrix(texts)).map { abs($0 - $1) }.max()!
        #expect(diff < 1e-4, "max |Δ| \(diff)")
        #expect(throws: RecipeError.self) { try params.converted(to: plain) }
        // Without the option the frozen encoder is used as it is.
        #expect(try QueryEncoder(encoder: encoder, parameters: original).features(texts) == encoder.featureMatrix(texts))
    }

    /// Retrieval-only steps on TrainingRunTests' facts move the layer (and, through it, the
    /// query features), and a run resumed from a checkpoint continues exactly.
    @Test func trainingMovesTheLayerAndResumesExactly() throws {
        let s = try TrainingRunTests.setup.get()
        func trainer() throws -> RecipeTrainer {
            let p = RecipeParameters(config: Self.config)
            RecipeInitializer.initialize(p, seed: 5)
            let q = try QueryEncoder(encoder: s.encoder, parameters: p)
            q.initialize()
            return try RecipeTrainer(parameters: p, set: s.set, features: s.features,
                                     queryEncoder: (q, LowerStateTable(texts: s.set.queryTexts, queryEncoder: q)), batchSize: 4, seed: 5)
        }
        let straight = try trainer()
        let before = Array(straight.parameters[.queryEncoder])
        let reference = try (0..<4).map { _ in try straight.trainStep().loss }
        #expect(Array(straight.parameters[.queryEncoder]) != before, "the encoder layer did not move")
        #expect(reference[3] < reference[0], "loss \(reference)")

        let first = try trainer()
        for _ in 0..<2 { try first.trainStep() }
        let bytes = try first.checkpoint(fingerprints: RecipeCheckpoint.Fingerprints(llm: "test", encoder: "test"), training: [:])
            .encoded(dtype: .f32)
        let resumed = try trainer()
        try resumed.resume(from: RecipeCheckpoint.decode(bytes, file: "memory"))
        let rest = try (0..<2).map { _ in try resumed.trainStep().loss }
        #expect(zip(rest, reference[2...]).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) }, "\(rest) vs \(Array(reference[2...]))")
        // A trainer without the states table for such an editor is refused.
        #expect(throws: RecipeError.self) {
            try RecipeTrainer(parameters: RecipeParameters(config: Self.config), set: s.set, features: s.features, batchSize: 4, seed: 5)
        }
    }
}
