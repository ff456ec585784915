import Testing
import Foundation
import Models
import Recipe
import RecipeEvaluation
import RecipeTraining
import Storage
import TestSupport

/// The harness end to end on the real models, a few samples: what it reports for a dataset
/// without paraphrases (WikiData_recent) and with them (CounterFact).
@Suite struct EditEvaluatorTests {
    func evaluator() throws -> EditEvaluator {
        let lm = try LanguageModel(path: Fixtures.smolLM2.path)
        let encoder = try BertEncoder(directory: Fixtures.miniLM)
        let p = RecipeParameters(config: RecipeConfig())
        RecipeInitializer.initialize(p, seed: 1)
        return EditEvaluator(lm: lm, model: try RecipeModel(parameters: p, llm: lm), features: { encoder.featureMatrix($0) })
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
    /// `--details`: one record per scored query, and per-sample means of their scores give
    /// back the reported figures.
    @Test func detailsAddUpToTheReport() throws {
        let e = try evaluator()
        let cf = Array(try EditDataset.load(Fixtures.data.appendingPathComponent("counterfact/dev.json")).samples.prefix(2))
        var details: [QueryDetail] = []
        let r = try e.evaluate(samples: cf, T: 2, method: .recipe, samplesPerT: 2, detail: { details.append($0) })
        #expect(details.count == cf.reduce(0) { $0 + 1 + $1.generality.count + $1.locality.count })
        func mean(_ kind: QueryDetail.Kind) -> Double {
            let perSample = (0..<cf.count).map { i -> Double in
                let scores = details.filter { $0.sample == i && $0.kind == kind }.map(\.score)
                return scores.reduce(0, +) / Double(scores.count)
            }
            return perSample.reduce(0, +) / Double(cf.count)
        }
        #expect(abs(mean(.reliability) - r.reliability) < 1e-12)
        #expect(abs(mean(.generality) - r.generality!) < 1e-12)
        #expect(abs(mean(.locality) - r.locality) < 1e-12)
        let edits = details.filter { $0.kind != .locality }
        #expect(edits.allSatisfy { $0.generated != nil && $0.exactMatch != nil })
        #expect(details.allSatisfy { $0.sentinelScore != nil && ($0.retrieved == nil || ($0.retrieved == $0.best && $0.bestScore! > $0.sentinelScore!)) })
        // Every query of a retrieving method reports its view; `question` only when it has one.
        #expect(details.allSatisfy { $0.view == "whole" || ($0.view == "question" && QuestionView.question(of: $0.prompt) != nil) })
        let right = edits.filter { $0.retrieved == $0.sample }.count
        #expect(abs(Double(right) / Double(edits.count) - r.retrievalAccuracy!) < 1e-12)
        let unrelated = details.filter { $0.kind == .locality }
        #expect(unrelated.allSatisfy { $0.generated != nil && $0.exactMatch == nil && $0.target == cf[$0.sample].locality[0].target })
        // The free-generation figures are those of the answers in the details.
        let starts = details.filter { $0.kind == .reliability && $0.exactMatch == true }.count
        #expect(abs(Double(starts) / Double(cf.count) - r.generationReliability) < 1e-12)
        #expect(abs(r.fluency - FluencyMetrics.fluency(edits.map { $0.generated! })) < 1e-12)
        #expect(abs(r.repetition - Double(edits.filter { $0.loops == true }.count) / Double(edits.count)) < 1e-12)
        #expect(abs(r.answersUnchanged - Double(unrelated.filter { $0.unedited == nil }.count) / Double(unrelated.count)) < 1e-12)
        #expect(r.answerTokens == 24)
    }

    /// Distractors are loaded before each chunk's edits and never scored: a query that
    /// retrieves one reports it as a negative index, and asking a distractor's own edit
    /// prompt retrieves it.
    @Test func distractorsCompeteInRetrievalButAreNotScored() throws {
        let e = try evaluator()
        let cf = Array(try EditDataset.load(Fixtures.data.appendingPathComponent("counterfact/dev.json")).samples.prefix(4))
        try e.loadDistractors(Array(cf[2..<4]))
        #expect(e.distractors.statements == cf[2..<4].map(\.statement))
        var details: [QueryDetail] = []
        let r = try e.evaluate(samples: Array(cf[0..<2]), T: 2, method: .recipe, samplesPerT: 2, detail: { details.append($0) })
        #expect(r.samples == 2 && details.allSatisfy { (0..<2).contains($0.sample) })
        #expect(details.allSatisfy { d in d.retrieved.map { (-2..<2).contains($0) } ?? true })
        // A distractor's own question finds the distractor (index −1 − d), not a sample.
        let own = try e.editor.retrieve([cf[2].request.prompt], features: e.queryFeatures)[0]
        #expect(own.best == 0, "distractor 0 is fact 0: \(own)")
    }

    /// A distractor about a subject that a scored prompt names (as whole words, any case) is
    /// left out; one about another subject, or without a subject, is kept.
    @Test func distractorsThatAnswerAScoredPromptAreLeftOut() {
        func fact(_ prompt: String, _ target: String, subject: String?) -> EditSample {
            EditSample(request: PromptTarget(prompt: prompt, target: target), subject: subject)
        }
        let scored = [EditSample(request: PromptTarget(prompt: "Toko Yasuda plays the", target: "piano"), subject: "Toko Yasuda",
                                 generality: [PromptTarget(prompt: "Toko Yasuda is known for the", target: "piano")],
                                 locality: [PromptTarget(prompt: "Queen Maud Land is in", target: "Antarctica")])]
        let candidates = [
            fact("Queen Maud Land is in", "Asia", subject: "Queen Maud Land"),  // a scored unrelated prompt's subject
            fact("toko yasuda was born in", "Paris", subject: "toko yasuda"),  // the edit's subject, other case
            fact("Queen Maud is a", "ship", subject: "Queen Maud"),  // whole words of "Queen Maud Land is in"
            fact("Maudlin is a", "word", subject: "Maud Lin"),  // named nowhere
            fact("Riga is a twin city of", "Warsaw", subject: "Riga"),
            fact("The sky is", "blue", subject: nil),
        ]
        let kept = EditEvaluator.distractors(candidates, sharingNoSubjectWith: scored)
        #expect(candidates.count - kept.count == 3)
        #expect(kept.map(\.request.target) == ["word", "Warsaw", "blue"])
    }

    /// The unedited model's free answers are its own: unchanged by definition, and each one
    /// is what `AnswerGenerator` gives for the bare prompt.
    @Test func freeAnswersOfTheUneditedModel() throws {
        let e = try evaluator()
        e.answerTokens = 8
        let cf = Array(try EditDataset.load(Fixtures.data.appendingPathComponent("counterfact/dev.json")).samples.prefix(2))
        var details: [QueryDetail] = []
        let r = try e.evaluate(samples: cf, T: 1, method: .none, samplesPerT: 2, detail: { details.append($0) })
        #expect(r.answersUnchanged == 1)
        for d in details {
            let a = try e.answers.answer(e.lm.tokenizer.encode(d.prompt), injection: .nothing, maxTokens: 8)
            #expect(d.generated == a.text)
            #expect(a.tokens.count == 8 || a.stopReason == .eos)
        }
    }
}
