import Testing
import Foundation
import Models
import Recipe
import RecipeEvaluation
import RecipeTraining
import Storage
import TestSupport

/// The evaluation adds a chunk's facts in groups and scores the queries of several samples
/// in one pass (`EditEvaluator.queriesPerPass`); what it reports must be what each query
/// gets alone. Checked on the shipped editor (its retrieval finds facts, so prompts and
/// statements are put in front) against a hand-run of every query: the editor's retrieval of
/// that question alone (the same facts; scores up to rounding), one forward for its
/// teacher-forced predictions, one `AnswerGenerator.answer` for its free answer (both to the
/// bit); and the facts against the same facts added one at a time.
@Suite(.serialized) struct EditEvaluatorBatchTests {
    static let loaded: Result<(LanguageModel, BertEncoder, RecipeCheckpoint, [EditSample]), Error> = Result {
        let lm = try LanguageModel(path: Fixtures.smolLM2.path)
        let fingerprints = try RecipeCheckpoint.Fingerprints.of(llm: lm.path, encoderDirectory: Fixtures.miniLM)
        let path = Fixtures.repoRoot.appendingPathComponent("Sources/RecipeCLI/Resources/editor-smollm2-135m.rcpe").path
        let samples = try EditDataset.load(Fixtures.data.appendingPathComponent("counterfact/dev.json")).samples
        return (lm, try BertEncoder(directory: Fixtures.miniLM), try RecipeCheckpoint.load(path, expecting: fingerprints),
                Array(samples.prefix(18)))
    }

    /// The shipped editor with a refiner of `steps` Adam steps (0: none).
    func evaluator(refineSteps steps: Int) throws -> EditEvaluator {
        let (lm, bert, ck, _) = try Self.loaded.get()
        let queryEncoder = try QueryEncoder(encoder: bert, parameters: ck.parameters)
        let e = EditEvaluator(lm: lm, model: try RecipeModel(parameters: ck.parameters, llm: lm), features: { bert.featureMatrix($0) },
                              queryFeatures: { queryEncoder.features($0) })
        if steps > 0 { e.editor.refiner = try PromptRefiner(lm: lm, options: .init(steps: steps, learningRate: 0.01, stopLoss: 0.05)) }
        return e
    }

    /// Argmax at each scored position of `c` with `injection` in front, one forward alone.
    func predictions(_ e: EditEvaluator, _ c: TeacherForcedCase, _ injection: Injection) throws -> [Int] {
        let (seq, shift) = e.answers.input(c.input, injection: injection)
        let out = try e.lm.llama.forward(seq, logits: .rows(c.scored.map { $0 + shift }))
        return (0..<c.scored.count).map { k in
            let logits = out.logits(at: k)  // the first largest, as the evaluation's argmax
            return logits.indices.reduce(logits.startIndex) { logits[$1] > logits[$0] ? $1 : $0 } - logits.startIndex
        }
    }

    /// Both absent, or equal up to float rounding (relative 1e-6).
    static func close(_ a: Double?, _ b: Double?) -> Bool {
        guard let a, let b else { return a == nil && b == nil }
        return abs(a - b) <= 1e-6 * max(1, abs(b))
    }

    @Test(arguments: [EditMethod.recipe, .incontext, .oracle, .none])
    func eachQueryGetsWhatItGetsAlone(method: EditMethod) throws {
        let e = try evaluator(refineSteps: 2)
        e.answerTokens = 12
        e.queriesPerPass = 7  // CounterFact samples have 3 queries: passes of 2, 2 and 1 samples
        e.stop = ["\n\n"]
        let cf = Array(try Self.loaded.get().3.prefix(5))
        try #require(cf.allSatisfy { $0.generality.count == 1 && $0.locality.count == 1 })
        var details: [QueryDetail] = [], progress: [Int] = []
        let r = try e.evaluate(samples: cf, T: 5, method: method, samplesPerT: 5, detail: { details.append($0) }) { done, total in
            #expect(total == 5)
            progress.append(done)
        }
        #expect(progress == [1, 2, 3, 4, 5])
        #expect(details.map(\.sample) == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4])
        #expect(details.map(\.kind) == Array(repeating: [QueryDetail.Kind.reliability, .generality, .locality], count: 5).flatMap { $0 })

        // Every query by hand, against the editor as the evaluation left it (one chunk: its
        // five facts, fact i being sample i).
        let retrieves = method == .recipe || method == .incontext
        var retrievedSome = 0, injected = 0
        for d in details {
            let tokenize = { (s: String) in e.lm.tokenizer.encode(s) }
            let retrieval = retrieves ? try e.editor.retrieve([d.prompt], features: e.queryFeatures)[0] : nil
            #expect(d.retrieved == retrieval?.fact && d.best == retrieval?.best, "\(d.prompt)")
            #expect(d.view == retrieval.map { $0.byQuestion ? "question" : "whole" })
            // The query keys of many questions come from one encoder pass: the same up to
            // rounding (another batch shape in the encoder's sgemms).
            #expect(Self.close(d.sentinelScore, retrieval.map { Double($0.sentinelScore) }), "\(d.prompt): sentinel score")
            #expect(Self.close(d.bestScore, retrieval.flatMap { $0.best == nil ? nil : Double($0.bestScore) }), "\(d.prompt): best score")
            let injection = e.editor.injection(method, retrieval: retrieval, correctFact: d.kind == .locality ? nil : d.sample)
            retrievedSome += retrieval?.fact == nil ? 0 : 1
            injected += injection == .nothing ? 0 : 1

            let c = TeacherForcedCase(prompt: d.prompt, target: d.target, tokenize: tokenize)
            let after = try predictions(e, c, injection)
            #expect(d.predicted == (try e.lm.tokenizer.decode(after, skipSpecial: false)), "\(d.prompt): predictions")
            let score: Double
            if d.kind == .locality {
                let before = try predictions(e, c, .nothing)
                score = Double(zip(before, after).filter { $0 == $1 }.count) / Double(c.scored.count)
            } else {
                score = Double(zip(c.scored, after).filter { c.labels[$0] == $1 }.count) / Double(c.scored.count)
            }
            #expect(d.score == score, "\(d.prompt): score")

            func answer(_ injection: Injection) throws -> String {
                try e.answers.answer(tokenize(d.prompt), injection: injection, maxTokens: 12, stop: ["\n\n"], handOff: true).text
            }
            let generated = try answer(injection)
            #expect(d.generated == generated, "\(d.prompt) (\(method)): free answer")
            if d.kind == .locality {
                let unedited = try answer(.nothing)
                #expect(d.unedited == (generated == unedited ? nil : unedited), "\(d.prompt): the unedited answer")
                #expect(d.exactMatch == nil && d.loops == nil)
            } else {
                #expect(d.exactMatch == EditMetrics.generationMatches(generated: generated, target: d.target))
                #expect(d.loops == FluencyMetrics.loops(generated))
            }
        }
        if method == .recipe || method == .incontext { #expect(retrievedSome >= 8, "retrieval finds facts: \(retrievedSome) of 15") }
        if method != .none { #expect(injected >= 8, "something is put in front: \(injected) of 15") }

        // The report is the details' means, with a time for every fact and query.
        let edits = details.filter { $0.kind == .reliability }
        #expect(abs(r.reliability - edits.map(\.score).reduce(0, +) / 5) < 1e-12)
        #expect(abs(r.generationReliability - Double(edits.filter { $0.exactMatch == true }.count) / 5) < 1e-12)
        #expect(r.querySecondsMedian > 0 && (method == .none || r.editSecondsMedian > 0))
    }

    /// The chunk's facts, added in groups of `PromptRefiner.maxBatch` (18 facts: two groups),
    /// are the facts added one at a time: the same statements in the same order, the same
    /// keys, prompts refined as alone (up to the rounding of another batch shape), and every
    /// question of the chunk retrieves the same fact from both.
    @Test func factsAddedInGroupsAreTheFactsAddedOneByOne() throws {
        let (_, bert, _, cf) = try Self.loaded.get()
        let e = try evaluator(refineSteps: 2)
        e.answerTokens = 1
        e.queriesPerPass = 64
        _ = try e.evaluate(samples: cf, T: cf.count, method: .recipe, samplesPerT: cf.count)
        let alone = try evaluator(refineSteps: 2).editor
        for s in cf {
            try alone.add(statements: [s.statement], subjects: [s.subject], requests: [(s.request.prompt, s.request.target)],
                          features: bert.featureMatrix([s.statement]))
        }
        #expect(e.editor.statements == alone.statements && e.editor.subjects == alone.subjects)
        let grouped = e.editor.keyIndex.keys, single = alone.keyIndex.keys
        let keyScale = single.map(abs).max()!
        let keyDiff = zip(grouped, single).map { abs($0 - $1) }.max()!
        #expect(keyDiff <= 1e-5 * keyScale, "keys differ by \(keyDiff) (scale \(keyScale))")
        for i in cf.indices {
            let a = e.editor.prompt(of: i), b = alone.prompt(of: i)
            let scale = b.map(abs).max()!, worst = zip(a, b).map { abs($0 - $1) }.max()!
            #expect(a != (try alone.model.encodeKnowledge(statements: [cf[i].statement],
                                                          features: bert.featureMatrix([cf[i].statement])).prompts), "fact \(i) is refined")
            #expect(worst <= 1e-4 * scale, "fact \(i): prompt differs by \(worst) (scale \(scale))")
        }
        let questions = cf.flatMap { [$0.request.prompt] + $0.generality.map(\.prompt) + $0.locality.map(\.prompt) }
        let fromGroups = try e.editor.retrieve(questions, features: e.queryFeatures)
        let fromSingles = try alone.retrieve(questions, features: e.queryFeatures)
        #expect(fromGroups.map(\.fact) == fromSingles.map(\.fact) && fromGroups.map(\.best) == fromSingles.map(\.best))
    }
}
