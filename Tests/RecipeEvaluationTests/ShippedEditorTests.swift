import Testing
import Foundation
import Models
import Recipe
import RecipeEvaluation
import RecipeTraining
import TestSupport

/// The editor checkpoint the project ships for the default models
/// (`Sources/RecipeCLI/Resources`, made by `Pipelines/train-editor.sh`): it loads only with
/// the models it was trained for, and it does its job on CounterFact dev facts it never saw
/// in training — each fact's edit prompt and paraphrase retrieve that fact (the facts carry
/// their subjects, so the editor's subject rule applies), and the fact's prompt raises the
/// new target's probability.
@Suite(.serialized) struct ShippedEditorTests {
    static let path = Fixtures.repoRoot.appendingPathComponent("Sources/RecipeCLI/Resources/editor-smollm2-135m.rcpe").path

    static let loaded: Result<(RecipeCheckpoint, LanguageModel, BertEncoder), Error> = Result {
        let lm = try LanguageModel(path: Fixtures.smolLM2.path)
        let fingerprints = try RecipeCheckpoint.Fingerprints.of(llm: lm.path, encoderDirectory: Fixtures.miniLM)
        return (try RecipeCheckpoint.load(path, expecting: fingerprints), lm, try BertEncoder(directory: Fixtures.miniLM))
    }

    @Test func isBoundToTheDefaultModels() throws {
        let (ck, _, _) = try Self.loaded.get()
        #expect(ck.parameters.config.promptLength == 3 && ck.parameters.config.modelWidth == 576)
        #expect(ck.optimizer == nil, "the shipped file is the small inference checkpoint")
        var other = ck.fingerprints
        other.llm = "crc32c:00000000:1"
        #expect(throws: RecipeError.self) { try RecipeCheckpoint.load(Self.path, expecting: other) }
    }

    @Test func retrievesAndEditsUnseenFacts() throws {
        let (ck, lm, encoder) = try Self.loaded.get()
        let model = try RecipeModel(parameters: ck.parameters, llm: lm)
        let samples = Array(try EditDataset.load(Fixtures.data.appendingPathComponent("counterfact/dev.json")).samples.prefix(40))
        let editor = KnowledgeEditor(model: model)
        try editor.add(statements: samples.map(\.statement), subjects: samples.map(\.subject),
                       features: encoder.featureMatrix(samples.map(\.statement)))

        let queryEncoder = try QueryEncoder(encoder: encoder, parameters: ck.parameters)
        func retrieved(_ queries: [String]) throws -> Int {
            let r = try editor.retrieve(queries: queries, queryFeatures: queryEncoder.features(queries), count: queries.count)
            return zip(r.indices, r).filter { $0.0 == $0.1.fact }.count
        }
        let edits = try retrieved(samples.map(\.request.prompt))
        #expect(edits >= 36, "the edit prompt retrieves its own fact for \(edits) of 40")
        #expect(model.config.subjectWeight > 0, "the shipped editor applies the subject rule")
        let paraphrases = try retrieved(samples.compactMap(\.generality.first?.prompt))
        #expect(paraphrases >= 35, "the paraphrase retrieves its fact for \(paraphrases) of 40")

        // The target's first token: more probable with the fact's prompt than without, for most facts.
        var raised = 0
        for (i, s) in samples.enumerated() {
            let c = TeacherForcedCase(prompt: s.request.prompt, target: s.request.target, tokenize: { lm.tokenizer.encode($0) })
            guard let row = c.scored.first else { continue }
            let label = c.labels[row]
            func probability(_ injection: Injection) throws -> Float {
                let (seq, shift) = injection.sequence(c.input, tokenizer: lm.tokenizer, width: 576)
                let logits = try lm.llama.forward(seq, logits: .rows([row + shift])).logits
                let m = logits.max()!
                return expf(logits[label] - m) / logits.reduce(0) { $0 + expf($1 - m) }
            }
            if try probability(.prompt(model.prefix(editor.prompt(of: i)))) > probability(.nothing) { raised += 1 }
        }
        #expect(raised >= 36, "the fact's prompt raises the target's probability for \(raised) of 40")
    }
}
