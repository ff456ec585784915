import Testing
import Foundation
import Models
import Recipe
import TestSupport

/// The harness end to end on the real models, a few samples: what it reports for a dataset
/// without paraphrases (WikiData_recent) and with them (CounterFact).
@Suite struct EditEvaluatorTests {
    func evaluator() throws -> EditEvaluator {
        let lm = try LanguageModel(path: Fixtures.smolLM2.path)
        let encoder = try BertEncoder(directory: Fixtures.miniLM)
        let p = RecipeParameters(config: RecipeConfig())
        RecipeInitializer.initialize(p, seed: 1)
        return EditEvaluator(lm: lm, model: RecipeModel(parameters: p, llm: lm), features: { encoder.featureMatrix($0) })
    }

    @Test func generalityIsAbsentWithoutParaphrases() throws {
        let e = try evaluator()
        let wiki = Array(try EditDataset.load(Fixtures.data.appendingPathComponent("wiki_recent/dev.json")).samples.prefix(2))
        let r = try e.evaluate(samples: wiki, T: 2, method: .recipe, samplesPerT: 2)
        #expect(r.generality == nil && r.generationGenerality == nil)
        #expect((0...1).contains(r.reliability) && (0...1).contains(r.locality))
        #expect(r.retrievalAccuracy != nil && r.falseRetrievalRate != nil)

        let cf = Array(try EditDataset.load(Fixtures.data.appendingPathComponent("counterfact/dev.json")).samples.prefix(2))
        let none = try e.evaluate(samples: cf, T: 1, method: .none, samplesPerT: 2)
        #expect(none.generality.map { (0...1).contains($0) } == true)
        #expect(none.locality == 1, "the unedited model agrees with itself")
        #expect(none.retrievalAccuracy == nil)
    }
}
