import Testing
import Foundation
import Models
import Recipe
import RecipeTraining
import RecipeEvaluation
import TestSupport

/// The rarity of an answer is what the unedited model pays to write it: a batch of targets
/// costs what each costs alone (a forward of its own, summed −log p), a made-up word costs
/// more than a common one, and `rarest` keeps the costliest share in data order.
@Suite struct UncommonAnswersTests {
    static let lm = Result { try LanguageModel(path: Fixtures.smolLM2.path) }

    func alone(_ target: String, _ lm: LanguageModel) throws -> Double {
        let c = TeacherForcedCase(prompt: UncommonAnswers.context, target: target, tokenize: { lm.tokenizer.encode($0) })
        let out = try lm.llama.forward(LlamaSequence(tokens: c.input), logits: .all)
        return c.scored.reduce(0.0) { sum, i in
            sum - log(Double(TeacherForcedCase.softmax(out.logits(at: i))[c.labels[i]]))
        }
    }

    @Test func aBatchCostsWhatEachTargetCostsAlone() throws {
        let lm = try Self.lm.get()
        let targets = ["female", "geohasher", "Sarkaņi Parish", "Paris", "fakaleitī"]
        let costs = try UncommonAnswers.cost(of: targets, lm: lm)
        for (t, c) in zip(targets, costs) {
            #expect(abs(c - (try alone(t, lm))) < 1e-3 * max(1, c), "\(t)")
        }
        #expect(costs[1] > costs[0] + 5 && costs[4] > costs[3] + 5, "\(costs)")
    }

    @Test func theRarestShareKeepsDataOrder() throws {
        let lm = try Self.lm.get()
        let samples = ["Paris", "geohasher", "English", "fakaleitī"].map {
            EditSample(request: PromptTarget(prompt: "The answer of X is", target: $0), subject: "X", generality: [], locality: [])
        }
        let kept = try UncommonAnswers.rarest(samples, fraction: 0.5, lm: lm)
        #expect(kept.map(\.request.target) == ["geohasher", "fakaleitī"])
        #expect(try UncommonAnswers.rarest(samples, fraction: 1, lm: lm) == samples)
    }
}
