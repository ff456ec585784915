// One training step of RECIPE (qizhou000/RECIPE `__train_a_batch__`), on cached encoder
// features:
//
//   1. knowledge reps of the batch's statements; query reps of the edit prompts and
//      paraphrases (randomly split into q1/q2 per fact, as the reference) and of the
//      unrelated prompts (q3, with the same-subject questions when the set has them) — one
//      stacked head forward per head;
//   2. the contrastive losses against the batch's knowledge plus the sentinel;
//   3. continuous prompts from the knowledge reps (and the statements' LLM token
//      embeddings, `StatementTokens`), and the edit losses through the frozen
//      LLM (`EditLossModel`): reliability and generality hinge label losses, locality KL —
//      their gradient w.r.t. the prompts flows back into the prompt transformer and the
//      knowledge head;
//   4. Adam on everything, with a global gradient clip.
//
// The batch and every random choice of step s are pure functions of (seed, s), so a run
// resumed from a checkpoint continues exactly.
import Foundation
import Posix
import Recipe
import Storage

/// The LLM side of training: given the batch's prompts, the edit losses and their gradient.
public protocol EditLossModel: AnyObject {
    /// - Parameters:
    ///   - prompts: [B, P·C], row i is the prompt of `examples[i]`
    /// - Returns: the three (unweighted) losses and d(weighted total)/d prompts [B, P·C].
    func editLosses(prompts: [Float], examples: [TrainingExample], config: RecipeConfig) throws -> EditLosses
    /// The LLM input embeddings of the statements' last `maxTokens` tokens (what the prompt
    /// transformer attends over).
    func statementTokens(_ statements: [String], maxTokens: Int) throws -> StatementTokens
}

public struct EditLosses: Sendable {
    public var reliability: Float
    public var generality: Float
    public var locality: Float
    public var dPrompts: [Float]
    /// Seconds in the LLM forward passes (unedited and prompted) and in its backward.
    public var forwardSeconds: Double
    public var backwardSeconds: Double
    public init(reliability: Float, generality: Float, locality: Float, dPrompts: [Float],
                forwardSeconds: Double = 0, backwardSeconds: Double = 0) {
        self.reliability = reliability
        self.generality = generality
        self.locality = locality
        self.dPrompts = dPrompts
        self.forwardSeconds = forwardSeconds
        self.backwardSeconds = backwardSeconds
    }
}

/// What one step did (one line of the training log).
public struct StepReport: Sendable, Codable {
    public var step: Int
    public var loss: Float
    public var q2k: Float
    public var q2sRelated: Float
    public var q2sUnrelated: Float
    public var reliability: Float?
    public var generality: Float?
    public var locality: Float?
    public var gradNorm: Float
    /// Seconds spent in the heads, prompt transformer and contrastive losses, and in the LLM
    /// losses (of which the LLM's forward passes and its backward).
    public var headSeconds: Double
    public var llmSeconds: Double
    public var llmForwardSeconds: Double?
    public var llmBackwardSeconds: Double?
}

public final class RecipeTrainer {
    public let config: RecipeConfig
    public let parameters: RecipeParameters
    public let set: TrainingSet
    public let features: FeatureTable
    /// With a fine-tuned query encoder (`RecipeConfig.queryEncoderLayers`): the encoder over
    /// this trainer's parameters and the states below its layer of every query text
    /// (`TrainingSet.queryTexts`); queries are then encoded anew at every step.
    public let queryEncoder: (encoder: QueryEncoder, lower: LowerStateTable)?
    /// Facts per step whose edit losses run through the LLM.
    public let batchSize: Int
    /// Facts per step in the contrastive losses (≥ batchSize): retrieval needs many
    /// negatives and costs little, the LLM losses need few and cost much, so the edit batch
    /// is the first `batchSize` facts of the contrastive batch.
    public let contrastiveBatchSize: Int
    public let seed: UInt64
    public var editLoss: EditLossModel?
    public private(set) var step: Int = 0
    let grads: RecipeParameters
    let adam: AdamOptimizer
    private var preparedTexts: [String: SubjectRule.Text] = [:]

    public init(parameters: RecipeParameters, set: TrainingSet, features: FeatureTable,
                queryEncoder: (encoder: QueryEncoder, lower: LowerStateTable)? = nil, batchSize: Int,
                contrastiveBatchSize: Int? = nil, seed: UInt64, editLoss: EditLossModel? = nil) throws {
        let cb = contrastiveBatchSize ?? batchSize
        guard batchSize >= 1, cb >= max(2, batchSize) else {
            throw RecipeError.invalidArgument("batch sizes: edit batch ≥ 1, contrastive batch ≥ 2 and ≥ the edit batch")
        }
        guard set.count >= cb else {
            throw RecipeError.invalidArgument("the training set has \(set.count) usable examples, fewer than the batch size \(cb)")
        }
        guard (queryEncoder != nil) == (parameters.config.queryEncoderLayers > 0),
              queryEncoder.map({ $0.encoder.parameters === parameters }) ?? true else {
            throw RecipeError.invalidArgument("a fine-tuned query encoder needs its states table and these parameters, and only it does")
        }
        self.contrastiveBatchSize = cb
        self.queryEncoder = queryEncoder
        config = parameters.config
        self.parameters = parameters
        self.set = set
        self.features = features
        self.batchSize = batchSize
        self.seed = seed
        self.editLoss = editLoss
        grads = RecipeParameters(config: config)
        adam = AdamOptimizer(config: config)
    }

    /// Continues from a training checkpoint (parameters, optimizer moments and step).
    public func resume(from checkpoint: RecipeCheckpoint) throws {
        guard checkpoint.parameters.config == config else {
            throw RecipeError.checkpoint(file: "resume", reason: "the checkpoint's config differs from this run's")
        }
        guard let opt = checkpoint.optimizer else {
            throw RecipeError.checkpoint(file: "resume", reason: "no optimizer state: not a training checkpoint")
        }
        parameters.base.update(from: checkpoint.parameters.base, count: parameters.count)
        try adam.restore(step: opt.step, m: opt.m, v: opt.v)
        step = opt.step
    }

    /// A training checkpoint of the current state.
    public func checkpoint(fingerprints: RecipeCheckpoint.Fingerprints, training: [String: String]) -> RecipeCheckpoint {
        RecipeCheckpoint(parameters: parameters.copy(), fingerprints: fingerprints, training: training,
                         optimizer: (step: adam.step, m: adam.m.values, v: adam.v.values))
    }

    /// The subject rule's score offsets [queries, facts] (nil when the rule is off): training
    /// sees the scores retrieval will use.
    func subjectOffsets(queries: [String], facts: [TrainingExample]) -> [Float]? {
        let rule = SubjectRule(weight: config.subjectWeight)
        guard rule.isOn else { return nil }
        let subjects = facts.map { f in f.subject.map { prepared($0) } }
        var offsets = [Float](repeating: 0, count: queries.count * facts.count)
        for (j, q) in queries.enumerated() {
            let query = prepared(q)
            for (c, s) in subjects.enumerated() {
                offsets[j * facts.count + c] = rule.adjusted(0, named: s.flatMap { SubjectRule.names($0, in: query) })
            }
        }
        return offsets
    }

    /// `SubjectRule.Text` of a training text, prepared once.
    private func prepared(_ text: String) -> SubjectRule.Text {
        if let t = preparedTexts[text] { return t }
        let t = SubjectRule.Text(text)
        preparedTexts[text] = t
        return t
    }

    /// `queries` as the query head sees them this step: each one with a question view
    /// replaced by it with probability `questionViewFraction` (no draws when that is 0).
    private func viewed(_ queries: [String], _ rng: inout SplitMix64) -> [String] {
        let f = Double(config.questionViewFraction)
        guard f > 0 else { return queries }
        return queries.map { q in
            guard let v = QuestionView.question(of: q) else { return q }
            return rng.unitDouble() < f ? v : q
        }
    }

    /// `e` as this step shows it: its paraphrase replaced with probability
    /// `questionFormFraction` by its question form or its noun form (one or the other at
    /// random, when it has both), its queries read as chat turns by the LLM with
    /// probability `chatFraction` (no draws when a fraction is 0, so that runs without them
    /// see the batches they always did).
    private func varied(_ e: TrainingExample, _ rng: inout SplitMix64) -> TrainingExample {
        var e = e
        if config.questionFormFraction > 0, let q = e.question, rng.unitDouble() < Double(config.questionFormFraction) {
            e.generality.prompt = e.nounForm.map { rng.next() & 1 == 0 ? q : $0 } ?? q
        }
        if config.chatFraction > 0 { e.chat = rng.unitDouble() < Double(config.chatFraction) }
        return e
    }

    /// Runs one step and returns its report.
    @discardableResult
    public func trainStep() throws -> StepReport {
        let B = contrastiveBatchSize, R = config.representationWidth
        var formRng = SplitMix64(seed: seed ^ (UInt64(step) &* 0x9E37_79B9_7F4A_7C15) ^ 0x51_7CC1_B727_220A)
        let batch = set.batch(step: step, size: B, seed: seed).map { varied(set.examples[$0], &formRng) }
        var rng = SplitMix64(seed: seed ^ (UInt64(step) &* 0xD1B5_4A32_D192_ED03))
        let swap = batch.map { _ in rng.next() & 1 == 1 }
        let q1 = zip(batch, swap).map { $1 ? $0.generality.prompt : $0.reliability.prompt }
        let q2 = zip(batch, swap).map { $1 ? $0.reliability.prompt : $0.generality.prompt }
        let q3 = batch.map(\.locality.prompt) + batch.compactMap(\.sameSubject)
        let U = q3.count
        let queries = q1 + q2 + q3
        let encoded = viewed(queries, &rng)

        let headStart = Date()
        grads.zero()
        let (kReps, kCache) = RecipeNetwork.headForward(parameters, .knowledge, features: features.gather(batch.map(\.statement)), N: B)
        var encoderCache: QueryEncoder.Cache?
        var queryFeatures: [Float]
        if let (encoder, lower) = queryEncoder {
            (queryFeatures, encoderCache) = encoder.forward(lower: lower.gather(encoded))
        } else {
            queryFeatures = features.gather(encoded)
        }
        let (qReps, qCache) = RecipeNetwork.headForward(parameters, .query, features: queryFeatures, N: 2 * B + U)
        let cl = ContrastiveLoss(q1: Array(qReps[0..<(B * R)]), q2: Array(qReps[(B * R)..<(2 * B * R)]),
                                 q3: Array(qReps[(2 * B * R)...]), knowledge: kReps, sentinel: Array(parameters[.sentinel]),
                                 B: B, U: U, R: R, config: config, offsets: subjectOffsets(queries: queries, facts: batch))
        let lc = config.contrastiveLambda
        var dK = cl.dKnowledge.map { $0 * lc }
        let dFeatures = RecipeNetwork.headBackward(parameters, grads, .query, dReps: (cl.dQ1 + cl.dQ2 + cl.dQ3).map { $0 * lc },
                                                   cache: qCache, N: 2 * B + U, wantFeatures: encoderCache != nil)
        if let (encoder, _) = queryEncoder, let encoderCache, let dFeatures {
            encoder.backward(dFeatures: dFeatures, cache: encoderCache, grads: grads)
        }
        let ds = grads[.sentinel]
        for r in 0..<R { ds[r] += cl.dSentinel[r] * lc }
        var headSeconds = Date().timeIntervalSince(headStart)

        var edit: EditLosses?
        var llmSeconds = 0.0
        if let editLoss {
            let E = batchSize
            let edits = Array(batch[0..<E])
            let promptStart = Date()
            let tokens = config.statementTokens > 0
                ? try editLoss.statementTokens(edits.map(\.statement), maxTokens: config.statementTokens) : nil
            let (prompts, pCache) = RecipeNetwork.promptForward(parameters, reps: Array(kReps[0..<(E * R)]), statements: tokens, N: E)
            headSeconds += Date().timeIntervalSince(promptStart)
            let llmStart = Date()
            let e = try editLoss.editLosses(prompts: prompts, examples: edits, config: config)
            llmSeconds = Date().timeIntervalSince(llmStart)
            let promptBackStart = Date()
            let dReps = RecipeNetwork.promptBackward(parameters, grads, dPrompts: e.dPrompts, cache: pCache, N: E)
            if config.editGradientToKnowledgeHead {
                for i in dReps.indices { dK[i] += dReps[i] }
            }
            headSeconds += Date().timeIntervalSince(promptBackStart)
            edit = e
        }
        let backStart = Date()
        RecipeNetwork.headBackward(parameters, grads, .knowledge, dReps: dK, cache: kCache, N: B)
        let rate = config.learningRateFactor(step: step)
        let norm = adam.update(parameters, grads, headLearningRate: config.headLearningRate * rate,
                               promptLearningRate: config.promptLearningRate * rate,
                               encoderLearningRate: config.encoderLearningRate * rate, clip: config.gradientClip,
                               frozen: { [config] in !config.trainKnowledgeHead && $0.isKnowledgeHead })
        headSeconds += Date().timeIntervalSince(backStart)
        step += 1

        var loss = lc * cl.total
        if let e = edit {
            loss += config.reliabilityLambda * e.reliability + config.generalityLambda * e.generality + config.localityLambda * e.locality
        }
        return StepReport(step: step, loss: loss, q2k: cl.q2k, q2sRelated: cl.q2sRelated, q2sUnrelated: cl.q2sUnrelated,
                          reliability: edit?.reliability, generality: edit?.generality, locality: edit?.locality,
                          gradNorm: norm, headSeconds: headSeconds, llmSeconds: llmSeconds,
                          llmForwardSeconds: edit?.forwardSeconds, llmBackwardSeconds: edit?.backwardSeconds)
    }
}
