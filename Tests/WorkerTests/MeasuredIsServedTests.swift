// What `recipe eval` measures is what `ask` serves: on the same facts, the evaluation's
// in-memory editor and a running worker retrieve the same fact for the same question and
// answer it with the same tokens (one `Retriever`, one `AnswerGenerator`), for questions as
// typed and as chat turns, with the prompt alone (`recipe`) and with the statement after it
// (`recipe+text`; in a chat turn the statement is part of the user's message).
import Foundation
import Models
import Recipe
import RecipeEvaluation
import RecipeTraining
import TestSupport
import Testing

@Suite(.serialized, .enabled(if: WorkerProcess.available, "needs the recipe binary and the models (Pipelines/fetch-models.sh)"))
struct MeasuredIsServedTests {
    @Test func evaluationAndWorkerRetrieveTheSameFactAndGiveTheSameAnswer() throws {
        let samples = Array(try EditDataset.load(Fixtures.data.appendingPathComponent("counterfact/dev.json")).samples.prefix(6))
        // The transformer's prompts on both sides (refinement is measured on its own).
        let w = try WorkerProcess(tag: "measured", extra: [
            "limits": ["maxGenerationTokens": 16, "defaultGenerationTokens": 16] as [String: Any],
            "refinement": ["steps": 0] as [String: Any],
            "promptStates": ["capacity": 0] as [String: Any],
        ])
        defer { w.remove() }
        try w.start()
        let facts = samples.map { ["prompt": $0.request.prompt, "target": $0.request.target, "subject": $0.subject ?? ""] }
        let added = try w.request(["op": "add", "facts": facts])
        #expect(added.ok, "\(added)")

        // The evaluation's side: the shipped editor, the same facts in one batch.
        let lm = try LanguageModel(path: Fixtures.smolLM2.path)
        let bert = try BertEncoder(directory: Fixtures.miniLM)
        let fingerprints = try RecipeCheckpoint.Fingerprints.of(llm: lm.path, encoderDirectory: Fixtures.miniLM)
        let checkpoint = Fixtures.repoRoot.appendingPathComponent("Sources/RecipeCLI/Resources/editor-smollm2-135m.rcpe").path
        let ck = try RecipeCheckpoint.load(checkpoint, expecting: fingerprints)
        let evaluator = EditEvaluator(lm: lm, model: try RecipeModel(parameters: ck.parameters, llm: lm),
                                      features: { bert.featureMatrix($0) },
                                      queryFeatures: { [q = try QueryEncoder(encoder: bert, parameters: ck.parameters)] in q.features($0) })
        let editor = evaluator.editor
        let statements = samples.map { $0.request.prompt + " " + $0.request.target }
        try editor.add(statements: statements, subjects: samples.map(\.subject), features: bert.featureMatrix(statements))

        var compared = 0
        let asks = samples.flatMap { s in [(s.request.prompt, false, EditMethod.recipe)] + s.generality.prefix(1).map { ($0.prompt, false, .recipe) } }
            + [(samples[0].request.prompt, true, .recipe), (samples[0].request.prompt, false, .recipeText),
               (samples[1].generality[0].prompt, true, .recipeText)]
        for (question, chat, method) in asks {
            let reply = try w.request(["op": "ask", "question": question, "method": method.rawValue, "max_tokens": 16, "chat": chat])
            #expect(reply.ok, "\(reply)")
            let retrieval = try editor.retrieve([question], features: evaluator.queryFeatures)[0]
            let served = (reply["fact"] as? [String: Any])?["statement"] as? String
            #expect(served == retrieval.fact.map { editor.statements[$0] }, "\(question): worker \(served ?? "none")")
            let (injection, asked) = editor.injection(method, retrieval: retrieval, correctFact: nil).placed(in: question, chat: chat)
            let answer = try evaluator.answers.answer(try evaluator.answers.tokens(of: asked, chat: chat), injection: injection,
                                                      maxTokens: 16, handOff: true)
            #expect(reply["answer"] as? String == answer.text, "\(question) (chat \(chat), \(method))")
            #expect(reply["tokens"] as? Int == answer.tokens.count && reply["stop_reason"] as? String == answer.stopReason.rawValue)
            compared += 1
        }
        #expect(compared == 15)
        #expect(try w.stop() == 0)
    }
}
