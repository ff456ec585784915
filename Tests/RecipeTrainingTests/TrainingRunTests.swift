import Testing
import Foundation
import Models
import Recipe
import RecipeTraining
import TestSupport

/// A short deterministic training run through the real models: a handful of facts that
/// form every batch, so the loss must fall; and a run interrupted by a checkpoint and
/// resumed in a fresh trainer must reproduce the uninterrupted run's losses.
@Suite(.serialized) struct TrainingRunTests {
    static let facts: [EditSample] = [
        EditSample(request: PromptTarget(prompt: "The mother tongue of Danielle Darrieux is", target: "English"),
                   generality: [PromptTarget(prompt: "Danielle Darrieux speaks the language", target: "English")],
                   locality: [PromptTarget(prompt: "The mother tongue of Jean Gabin is", target: "French")]),
        EditSample(request: PromptTarget(prompt: "Toko Yasuda plays the", target: "piano"),
                   generality: [PromptTarget(prompt: "Toko Yasuda is incredible at the", target: "piano")],
                   locality: [PromptTarget(prompt: "John Lennon performs on the", target: "guitar")]),
        EditSample(request: PromptTarget(prompt: "BBC One is owned by", target: "Sega"),
                   generality: [PromptTarget(prompt: "BBC One is a product of", target: "Sega")],
                   locality: [PromptTarget(prompt: "BBC Radio is owned by", target: "BBC")]),
        EditSample(request: PromptTarget(prompt: "The capital of Norway is", target: "Rome"),
                   generality: [PromptTarget(prompt: "Norway's capital city is", target: "Rome")],
                   locality: [PromptTarget(prompt: "The capital of Sweden is", target: "Stockholm")]),
    ]

    struct Setup {
        let lm: LanguageModel
        let encoder: BertEncoder
        let set: TrainingSet
        let features: FeatureTable
    }

    static let setup: Result<Setup, Error> = Result {
        let lm = try LanguageModel(path: Fixtures.smolLM2.path)
        let encoder = try BertEncoder(directory: Fixtures.miniLM)
        let set = TrainingSet(samples: facts)
        let features = try FeatureCache.table(texts: set.texts, width: encoder.featureCount, encoderFingerprint: "test",
                                              directory: nil, encode: { encoder.features($0) })
        return Setup(lm: lm, encoder: encoder, set: set, features: features)
    }

    func trainer(_ s: Setup, config: RecipeConfig) throws -> RecipeTrainer {
        let p = RecipeParameters(config: config)
        RecipeInitializer.initialize(p, seed: 5)
        return try RecipeTrainer(parameters: p, set: s.set, features: s.features, batchSize: 4, seed: 5,
                                 editLoss: LlamaEditLoss(model: s.lm))
    }

    static var config: RecipeConfig {
        var c = RecipeConfig()
        c.representationWidth = 64
        c.promptLearningRate = 3e-3
        c.headLearningRate = 1e-3
        c.editHingeScale = 1e9  // no hinge: every target token counts, so the loss is smooth
        return c
    }

    @Test func lossFallsOnAFixedBatch() throws {
        let s = try Self.setup.get()
        let t = try trainer(s, config: Self.config)
        let reports = try (0..<6).map { _ in try t.trainStep() }
        let first = reports[0], last = reports[5]
        #expect(last.loss < first.loss, "loss \(first.loss) → \(last.loss)")
        #expect(last.reliability! < first.reliability!, "reliability loss \(first.reliability!) → \(last.reliability!)")
    }

    /// The cosine schedule: full rate at step 0, half way at half the decay steps, 0 from the end on.
    @Test func learningRateSchedule() {
        var c = RecipeConfig()
        #expect(c.learningRateFactor(step: 500) == 1)
        c.learningRateDecaySteps = 100
        #expect(c.learningRateFactor(step: 0) == 1)
        #expect(abs(c.learningRateFactor(step: 50) - 0.5) < 1e-6)
        #expect(c.learningRateFactor(step: 25) > c.learningRateFactor(step: 75))
        #expect(c.learningRateFactor(step: 100) == 0 && c.learningRateFactor(step: 150) == 0)
    }

    /// A frozen knowledge head stays bit for bit (and with it every prompt), while the query
    /// head and the sentinel train.
    @Test func frozenKnowledgeHeadStaysPut() throws {
        let s = try Self.setup.get()
        var config = Self.config
        config.trainKnowledgeHead = false
        let p = RecipeParameters(config: config)
        RecipeInitializer.initialize(p, seed: 5)
        let before = p.copy()
        let t = try RecipeTrainer(parameters: p, set: s.set, features: s.features, batchSize: 4, seed: 5)
        for _ in 0..<3 { try t.trainStep() }
        for tensor in RecipeTensor.allCases where tensor.isKnowledgeHead || tensor.isPromptTransformer {
            #expect(Array(p[tensor]) == Array(before[tensor]), "\(tensor) changed")
        }
        #expect(Array(p[.queryW1]) != Array(before[.queryW1]))
        #expect(Array(p[.sentinel]) != Array(before[.sentinel]))
    }

    /// `questionViewFraction`: the same facts with a sentence in front of every paraphrase,
    /// all of them seen as their last sentence, train exactly as the facts without it.
    @Test func questionViewsReachTheRetrievalLosses() throws {
        let s = try Self.setup.get()
        let context = Self.facts.map { f in
            var f = f
            f.generality = f.generality.map { PromptTarget(prompt: "It rained all day. " + $0.prompt, target: $0.target) }
            return f
        }
        let set = TrainingSet(samples: context)
        let features = try FeatureCache.table(texts: set.texts, width: s.encoder.featureCount, encoderFingerprint: "test",
                                              directory: nil, encode: { s.encoder.features($0) })
        func firstStep(_ set: TrainingSet, _ features: FeatureTable, fraction: Float) throws -> StepReport {
            var config = Self.config
            config.questionViewFraction = fraction
            let p = RecipeParameters(config: config)
            RecipeInitializer.initialize(p, seed: 5)
            return try RecipeTrainer(parameters: p, set: set, features: features, batchSize: 4, seed: 5).trainStep()
        }
        let plain = try firstStep(s.set, s.features, fraction: 0)
        let whole = try firstStep(set, features, fraction: 0)
        let viewed = try firstStep(set, features, fraction: 1)
        // The viewed texts are encoded in other batches than in `s.set`, and OpenBLAS need not
        // round a row alike in batches of other shapes: equal up to float rounding, where the
        // context sentence moves the loss by far more.
        let rounding = 1e-4 * abs(plain.loss)
        print("question views: loss without context \(plain.loss), with context \(whole.loss), viewed \(viewed.loss)")
        #expect(abs(whole.loss - plain.loss) > 100 * rounding, "the context sentence changes the paraphrases' features")
        #expect(abs(viewed.loss - plain.loss) <= rounding && abs(viewed.q2k - plain.q2k) <= 1e-4 * abs(plain.q2k),
                "viewed \(viewed.loss), without context \(plain.loss)")
    }

    /// With a decaying learning rate, so that the schedule's step must resume too; with and
    /// without slot conditioning (its tensors and their Adam moments resume as well).
    @Test(arguments: [false, true]) func resumedRunContinuesExactly(slotConditioning: Bool) throws {
        let s = try Self.setup.get()
        var config = Self.config
        config.learningRateDecaySteps = 6
        config.slotConditioning = slotConditioning
        let straight = try trainer(s, config: config)
        let reference = try (0..<4).map { _ in try straight.trainStep().loss }

        let first = try trainer(s, config: config)
        _ = try first.trainStep()
        _ = try first.trainStep()
        let fingerprints = RecipeCheckpoint.Fingerprints(llm: "test", encoder: "test")
        let bytes = try first.checkpoint(fingerprints: fingerprints, training: [:]).encoded(dtype: .f32)
        let resumed = try trainer(s, config: config)
        try resumed.resume(from: RecipeCheckpoint.decode(bytes, file: "memory"))
        #expect(resumed.step == 2)
        let rest = try (0..<2).map { _ in try resumed.trainStep().loss }
        let diff = zip(rest, reference[2...]).map { abs($0 - $1) }.max()!
        #expect(diff <= 1e-5 * max(1, abs(reference[3])), "resumed losses \(rest) vs uninterrupted \(Array(reference[2...]))")
    }
    /// With a leading token the prompts sit one row later in every prompted sequence: the
    /// gradient of the edit losses with respect to the prompt agrees with central differences
    /// on the coordinates with the largest gradient (an offset error would pair them with the
    /// leading row's or the wrong slot's gradient), and the token changes the losses.
    @Test func leadingTokenPromptGradient() throws {
        let s = try Self.setup.get()
        var config = Self.config
        config.leadingToken = 0
        let loss = LlamaEditLoss(model: s.lm)
        let examples = [s.set.examples[0]]
        let prompt = try s.lm.llama.embeddingRows(of: [Int](s.lm.tokenizer.encode(" the English language is").prefix(config.promptLength)))
        func total(_ p: [Float], _ c: RecipeConfig) throws -> (Double, [Float]) {
            let l = try loss.editLosses(prompts: p, examples: examples, config: c)
            return (Double(l.reliability) + Double(l.generality) + Double(l.locality), l.dPrompts)
        }
        let (base, grad) = try total(prompt, config)
        #expect(try total(prompt, Self.config).0 != base, "the leading token changes nothing")
        var worst = 0.0
        for i in grad.indices.sorted(by: { abs(grad[$0]) > abs(grad[$1]) }).prefix(3) {
            var plus = prompt, minus = prompt
            plus[i] += 2e-2
            minus[i] -= 2e-2
            let numeric = (try total(plus, config).0 - total(minus, config).0) / Double(plus[i] - minus[i])
            worst = max(worst, abs(numeric - Double(grad[i])) / max(abs(numeric), 1e-3))
        }
        print("TrainingRunTests: leading token, prompt gradient vs central differences, largest relative error \(worst)")
        #expect(worst < 0.05, "relative error \(worst)")
    }
}
