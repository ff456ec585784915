import Testing
import Foundation
import Models
import Recipe
import RecipeTraining
import Storage
import TestSupport

/// Prompt refinement (`PromptRefiner`) on the real models: it lowers the target's
/// cross-entropy as the inference forward measures it, stops at once for a prompt that
/// already meets the stop loss, is deterministic (a repository's rows must re-encode
/// bit for bit), and touches only the facts that name a question and a target.
@Suite(.serialized) struct PromptRefinerTests {
    static let loaded: Result<(LanguageModel, RecipeModel, BertEncoder, [EditSample]), Error> = Result {
        let lm = try LanguageModel(path: Fixtures.smolLM2.path)
        let p = RecipeParameters(config: RecipeConfig())
        RecipeInitializer.initialize(p, seed: 1)
        let samples = Array(try EditDataset.load(Fixtures.data.appendingPathComponent("counterfact/dev.json")).samples.prefix(2))
        return (lm, try RecipeModel(parameters: p, llm: lm), try BertEncoder(directory: Fixtures.miniLM), samples)
    }

    /// The untrained editor's prompt for `s` (the prompt slots on the statement's last tokens).
    func prompt(_ s: EditSample) throws -> [Float] {
        let (_, model, encoder, _) = try Self.loaded.get()
        return try model.encodeKnowledge(statements: [s.statement], features: encoder.featureMatrix([s.statement])).prompts
    }

    /// Mean cross-entropy of the target after the edit question, with `prompt` in front,
    /// by the inference forward (not the training pass the refiner uses).
    func targetLoss(_ s: EditSample, _ prompt: [Float]) throws -> Float {
        let (lm, _, _, _) = try Self.loaded.get()
        let c = TeacherForcedCase(prompt: s.request.prompt, target: s.request.target, tokenize: { lm.tokenizer.encode($0) })
        let P = prompt.count / 576
        let out = try lm.llama.forward(LlamaSequence(tokens: c.input, prefix: prompt), logits: .rows(c.scored.map { $0 + P }))
        var loss: Float = 0
        for (k, pos) in c.scored.enumerated() {
            let logits = Array(out.logits(at: k)), m = logits.max()!
            let logSum = logf(logits.reduce(0) { $0 + expf($1 - m) }) + m
            loss += logSum - logits[c.labels[pos]]
        }
        return loss / Float(c.scored.count)
    }

    /// A refiner (rate 0.01), the first sample and its untrained prompt.
    func firstSample(steps: Int, stopLoss: Float) throws -> (refiner: PromptRefiner, sample: EditSample, start: [Float]) {
        let (lm, _, _, samples) = try Self.loaded.get()
        return (try PromptRefiner(lm: lm, options: .init(steps: steps, learningRate: 0.01, stopLoss: stopLoss)), samples[0],
                try prompt(samples[0]))
    }

    /// A batch refines each fact as it would be refined alone (up to the rounding of another
    /// batch shape), and a fact that meets the stop loss leaves the batch while the others go on.
    @Test func aBatchRefinesEachFactAsAlone() throws {
        let (lm, _, _, samples) = try Self.loaded.get()
        let refiner = try PromptRefiner(lm: lm, options: .init(steps: 3, learningRate: 0.01, stopLoss: 0))
        let starts = try samples.map(prompt)
        let requests = samples.map { ($0.request.prompt, $0.request.target) }
        let alone = try zip(starts, requests).map { try refiner.refine($0, leading: [], question: $1.0, target: $1.1) }
        // A third request: the second fact again with a prompt refined further, whose loss
        // is the stop loss: it meets it at once (0 steps, unchanged) and leaves the batch.
        let deeper = try PromptRefiner(lm: lm, options: .init(steps: 8, learningRate: 0.01, stopLoss: 0))
            .refine(starts[1], leading: [], question: requests[1].0, target: requests[1].1).prompt
        let bar = try targetLoss(samples[1], deeper) + 0.01
        #expect(try bar < min(targetLoss(samples[0], starts[0]), targetLoss(samples[1], starts[1])))
        let easy = try PromptRefiner(lm: lm, options: .init(steps: 3, learningRate: 0.01, stopLoss: bar))
        let batch = try easy.refine(starts + [deeper], leading: [], requests: requests + [requests[1]])
        let together = try refiner.refine(starts, leading: [], requests: requests)
        for (a, b) in zip(alone, together) {
            #expect(a.steps == b.steps)
            let scale = a.prompt.map(abs).max()!
            let worst = zip(a.prompt, b.prompt).map { abs($0 - $1) }.max()!
            #expect(worst <= 1e-4 * scale, "batched prompt differs by \(worst) (scale \(scale))")
        }
        #expect(batch[2].steps == 0 && batch[2].prompt == deeper, "met the stop loss: unchanged")
        #expect(batch[0].steps > 0 && batch[1].steps > 0)
    }

    @Test func lowersTheTargetLossAndIsDeterministic() throws {
        let (refiner, s, start) = try firstSample(steps: 4, stopLoss: 0)
        let a = try refiner.refine(start, leading: [], question: s.request.prompt, target: s.request.target)
        let b = try refiner.refine(start, leading: [], question: s.request.prompt, target: s.request.target)
        #expect(a.steps == 4 && a.prompt != start)
        #expect(a.prompt == b.prompt, "the same fact refines to the same prompt, bit for bit")
        let before = try targetLoss(s, start), after = try targetLoss(s, a.prompt)
        #expect(after < 0.7 * before, "target cross-entropy \(before) → \(after)")
        #expect(refiner.counts == PromptRefiner.Counts(facts: 2, steps: 8, unchanged: 0))
    }

    @Test func stopsAtOnceBelowTheStopLoss() throws {
        let (refiner, s, start) = try firstSample(steps: 4, stopLoss: 1e9)
        let r = try refiner.refine(start, leading: [], question: s.request.prompt, target: s.request.target)
        #expect(r.steps == 0 && r.prompt == start)
        #expect(abs(r.loss - (try targetLoss(s, start))) < 1e-3 * max(1, r.loss), "the loss it stopped at is the target's")
        #expect(refiner.counts.unchanged == 1)
    }

    @Test func leavesAFactPastTheTokenLimitAlone() throws {
        let (refiner, s, start) = try firstSample(steps: 4, stopLoss: 0)
        let long = String(repeating: "and then some more words ", count: 40) + s.request.prompt
        let r = try refiner.refine(start, leading: [], question: long, target: s.request.target)
        #expect(r.steps == 0 && r.prompt == start && r.loss.isNaN)
        #expect(refiner.counts == PromptRefiner.Counts(), "a fact left alone is not counted as refined")
    }

    @Test func refinesOnlyTheRowsWithAQuestionAndATarget() throws {
        let (lm, _, _, samples) = try Self.loaded.get()
        let rows = try samples.flatMap(prompt)
        let w = rows.count / samples.count
        let refiner = try PromptRefiner(lm: lm, options: .init(steps: 2, learningRate: 0.01, stopLoss: 0))
        var refined = rows
        try refiner.refine(&refined, rowFloats: w, leading: [], requests: [nil, (samples[1].request.prompt, samples[1].request.target)])
        #expect(Array(refined[0..<w]) == Array(rows[0..<w]))
        #expect(Array(refined[w...]) != Array(rows[w...]))
        var off = rows
        try PromptRefiner(lm: lm, options: .off).refine(&off, rowFloats: w, leading: [], requests: [(samples[0].request.prompt, samples[0].request.target), nil])
        #expect(off == rows, "0 steps refine nothing")
    }

    /// A fact's question and target when it names both; a bare statement only when the
    /// options refine statements, as its first word and the rest.
    @Test func whatAFactIsRefinedOn() throws {
        let (lm, _, _, _) = try Self.loaded.get()
        let plain = try PromptRefiner(lm: lm, options: .standard)
        var withStatements = PromptRefiner.Options.standard
        withStatements.statements = true
        let both = try PromptRefiner(lm: lm, options: withStatements)
        for r in [plain, both] {
            let q = r.request(statement: "Paris is the capital of Italy", question: "The capital of Italy is", target: "Paris")
            #expect(q?.question == "The capital of Italy is" && q?.target == "Paris")
        }
        #expect(plain.request(statement: "Paris is the capital of Italy", question: nil, target: nil) == nil)
        #expect(plain.request(statement: "Paris is the capital of Italy", question: "", target: "Paris") == nil)
        let s = both.request(statement: "Paris  is the capital of Italy", question: nil, target: nil)
        #expect(s?.question == "Paris" && s?.target == "is the capital of Italy")
        #expect(both.request(statement: "Paris", question: nil, target: nil) == nil, "one word: nothing to continue")
        #expect(withStatements.fingerprint.hasSuffix(" statements") && !PromptRefiner.Options.standard.fingerprint.contains("statements"))
    }

    @Test func rejectsOptionsItCannotUse() throws {
        let (lm, _, _, _) = try Self.loaded.get()
        for bad in [PromptRefiner.Options(steps: -1, learningRate: 0.01, stopLoss: 0.05),
                    PromptRefiner.Options(steps: 4, learningRate: 0, stopLoss: 0.05),
                    PromptRefiner.Options(steps: 4, learningRate: 0.01, stopLoss: .nan)] {
            #expect(bad.problem != nil)
            #expect(throws: RecipeError.self) { try PromptRefiner(lm: lm, options: bad) }
        }
        #expect(PromptRefiner.Options.standard.problem == nil && PromptRefiner.Options.off.problem == nil)
    }

    /// The repository's encoder refines the facts that name a question and a target, and
    /// its fingerprint names the refinement (a repository encoded without it re-encodes).
    @Test func theRepositoryEncoderRefinesFactsWithATarget() throws {
        let (lm, model, encoder, samples) = try Self.loaded.get()
        let fingerprints = RecipeCheckpoint.Fingerprints(llm: "llm", encoder: "encoder")
        let plain = try RecipeFactEncoder(model: model, encoder: encoder, modelFingerprints: fingerprints)
        let refining = try RecipeFactEncoder(model: model, encoder: encoder, modelFingerprints: fingerprints,
                                         refiner: try PromptRefiner(lm: lm, options: .init(steps: 2, learningRate: 0.01, stopLoss: 0)))
        #expect(plain.fingerprint != refining.fingerprint && refining.fingerprint.hasSuffix(";refine=steps 2 lr 0.01 stop 0.0"))
        let s = samples[0]
        let withTarget = Fact(id: "a", statement: s.statement, prompt: s.request.prompt, target: s.request.target)
        let statementOnly = Fact(id: "b", statement: samples[1].statement)
        let base = try plain.encode(facts: [withTarget, statementOnly])
        let refined = try refining.encode(facts: [withTarget, statementOnly])
        let w = plain.promptRowFloats
        #expect(refined.keys == base.keys, "retrieval keys do not change")
        #expect(Array(refined.prompts[0..<w]) != Array(base.prompts[0..<w]))
        #expect(Array(refined.prompts[w...]) == Array(base.prompts[w...]))
        // With statements refined too, the bare statement's prompt changes as well.
        let all = try RecipeFactEncoder(model: model, encoder: encoder, modelFingerprints: fingerprints,
                                    refiner: try PromptRefiner(lm: lm, options: .init(steps: 2, learningRate: 0.01, stopLoss: 0, statements: true)))
        let both = try all.encode(facts: [withTarget, statementOnly])
        // (refined in one batch with the statement: equal up to the rounding of the batch shape)
        let worst = zip(both.prompts[0..<w], refined.prompts[0..<w]).map { abs($0 - $1) }.max()!
        #expect(worst <= 1e-4 * refined.prompts[0..<w].map(abs).max()!, "differs by \(worst)")
        #expect(Array(both.prompts[w...]) != Array(base.prompts[w...]))
    }
}
