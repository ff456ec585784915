// The sentinel's calibration on held-out facts (`RetrievalEvaluation.sentinelScale`).
import Recipe
import RecipeEvaluation
import RecipeTestSupport
import RecipeTraining
import Testing

/// The sentinel calibration: after scaling the sentinel key by the factor found for a rate,
/// exactly that share of the set's unrelated prompts retrieves a fact (random features, the
/// initializer's editor), and an unreachable rate gives no factor.
@Suite struct SentinelCalibrationTests {
    @Test func scaledSentinelMeetsTheRate() throws {
        var c = smallConfig()
        c.featureWidth = 32
        c.representationWidth = 16
        let N = 40
        let samples = (0..<N).map { i in
            EditSample(request: PromptTarget(prompt: "edit \(i)", target: "t"),
                       generality: [PromptTarget(prompt: "paraphrase \(i)", target: "t")],
                       locality: [PromptTarget(prompt: "unrelated \(i)", target: "u")])
        }
        let set = TrainingSet(samples: samples)
        let texts = Array(Set(set.texts)).sorted()
        let features = FeatureTable(width: c.featureWidth, texts: texts, features: uniform(texts.count * c.featureWidth, seed: 31))
        let params = RecipeParameters(config: c)
        RecipeInitializer.initialize(params, seed: 7)
        let model = try RecipeModel(parameters: params)
        let before = RetrievalEvaluation.evaluate(model: model, set: set, features: features).falseRetrievalRate
        let factor = try #require(RetrievalEvaluation.sentinelScale(model: model, set: set, features: features, falseRate: 0.1))
        for i in params[.sentinel].indices { params[.sentinel][i] *= factor }
        let after = RetrievalEvaluation.evaluate(model: model, set: set, features: features).falseRetrievalRate
        #expect(after == 0.1, "false retrieval \(before) before, \(after) after scaling by \(factor)")
        #expect(RetrievalEvaluation.sentinelScale(model: model, set: set, features: features, falseRate: 1.5) == nil)
    }
}
