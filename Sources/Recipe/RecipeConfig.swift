// Sizes and training hyper-parameters of the RECIPE editor. Defaults in one place; every
// field documented; validated at load.
//
// Dimension letters (llm.c style): N batch of texts, F encoder features (4 × 384: pooler,
// mean, max, min of all-MiniLM-L6-v2), R representation (retrieval key) width, P prompt
// vectors per fact, C the LLM's embedding width.

import Foundation
import Models

public struct RecipeConfig: Codable, Sendable, Equatable {
    /// Encoder feature width F (`[pooler, mean, max, min]` of the knowledge encoder).
    public var featureWidth: Int = 4 * 384
    /// Representation width R. The paper used 4096 for a 4096-wide LLM; 256 keeps the key
    /// matrix at 1 KiB per fact (1 GB at 10^6 facts) and the checkpoint small, while the
    /// frozen encoder's 384-d embedding already retrieves the right fact for 97–99% of queries.
    public var representationWidth: Int = 256
    /// Continuous prompt length P (vectors prepended to the query's token embeddings).
    public var promptLength: Int = 3
    /// The LLM's embedding width C.
    public var modelWidth: Int = 576
    /// T: the prompt transformer's attention pools over the LLM input embeddings of the
    /// statement's last T tokens (`StatementTokens`); 0 turns that path off (prompts from
    /// r(k) alone, as the paper). 16 covers CounterFact and zsRE statements' targets and
    /// subjects in almost every case.
    public var statementTokens: Int = 16
    /// Buckets of "distance from the statement's end" with a learned attention bias each (the
    /// last bucket takes every farther token).
    public static let positionBuckets = 8
    /// A more expressive attention path (off in every editor trained before it existed): each
    /// prompt slot gets its own value map V_j [C, C] + v_j instead of one shared by all slots,
    /// and slot j's attention query becomes u_j + (W_q x)_j, conditioned on the fact through
    /// the prompt transformer's hidden representation x [R] (W_q [P·C, R]). Starts exactly as
    /// the shared, fact-independent attention (every V_j the identity, W_q zero); an editor
    /// without it converts with `RecipeParameters.converted(to:)`. Needs `statementTokens` > 0.
    public var slotConditioning: Bool = false
    /// A token placed in front of the continuous prompt (nil: none, as every editor trained
    /// before it existed). A causal LM's first position serves as its attention sink, so the
    /// first of P prompt vectors carries little of the fact; with a leading token (e.g.
    /// `<|endoftext|>`, the document separator the LLM saw first in pretraining) all P do.
    public var leadingToken: Int? = nil
    /// The subject rule's weight (`SubjectRule`, this project's addition; 0: off, the paper's
    /// dense-only retrieval): a fact that names its subject gains this much on its scaled
    /// similarity for a query that names the subject and loses it for one that does not. In
    /// the same units as the scores (the sentinel's margin), so it belongs to the editor.
    public var subjectWeight: Float = 0
    /// Top layers of the encoder fine-tuned for queries (this project's addition; 0: the
    /// frozen encoder, as every editor trained before it existed; at most 1 today). The
    /// editor then carries its own copy of the encoder's last layer, starting from the
    /// encoder's weights, through which queries are encoded; statements keep the frozen
    /// encoder, so keys and prompts do not change. Its Adam rate is `encoderLearningRate`.
    public var queryEncoderLayers: Int = 0

    // Training (names follow qizhou000/RECIPE `RECIPEConfig.TrainingConfig`).
    /// Temperature multiplier on query–knowledge similarities (`query_knowledge_t`).
    public var queryKnowledgeT: Float = 1
    /// Temperature multiplier on query–sentinel similarities (`query_prototype_t`).
    public var queryPrototypeT: Float = 1
    /// Hinge scale of the contrastive terms: a term counts only while its probability is below
    /// `scale ×` the runner-up (`constra_hinge_scale`; ≥ 1 enables the hinge).
    public var contrastiveHingeScale: Float = 1.5
    /// Hinge scale of the label loss (`edit_hinge_scale`).
    public var editHingeScale: Float = 1.5
    public var contrastiveLambda: Float = 1
    /// Weight of the unrelated-query sentinel term (q2s-loc) against the other contrastive
    /// terms: below 1 the sentinel settles lower (more recall, more false retrievals).
    public var unrelatedLambda: Float = 1
    /// The share of training queries with a question view (`QuestionView`: several
    /// sentences) that the contrastive losses see as their last sentence instead, drawn per
    /// step, so that the query head and the sentinel learn the texts retrieval also reads.
    /// The subject rule's offsets still read the whole query, as in retrieval. 0: the paper's
    /// whole queries only.
    public var questionViewFraction: Float = 0
    /// The share of training examples whose paraphrase is replaced, drawn per step, by the
    /// question a person would type for the edit (`QuestionForms`: "What does Toko Yasuda
    /// play?"), in the retrieval losses and in the prompts' label losses. 0: the datasets'
    /// paraphrases only.
    public var questionFormFraction: Float = 0
    /// The share of training examples whose edit and paraphrase queries the LLM reads as a
    /// chat user turn in the model's template (the prompt still in front, the target as the
    /// start of the assistant's turn), drawn per step, in the label losses only: retrieval
    /// reads the bare question, as `ask` does. 0: raw queries only.
    public var chatFraction: Float = 0
    public var reliabilityLambda: Float = 1
    public var generalityLambda: Float = 1
    public var localityLambda: Float = 1
    /// Adam learning rates of the heads (knowledge, query, sentinel) and of the prompt transformer.
    public var headLearningRate: Float = 1e-4
    public var promptLearningRate: Float = 1e-4
    /// Adam learning rate of the fine-tuned encoder layer (`queryEncoderLayers`): pretrained
    /// weights take small steps.
    public var encoderLearningRate: Float = 3e-5
    /// Whether the edit losses' gradient reaches the knowledge head through the prompts (the
    /// paper trains jointly). With `false` the heads and sentinel learn only from the
    /// contrastive losses: a second training stage can then train the prompt transformer
    /// without disturbing retrieval (`freezeRetrieval` also stops every retrieval part).
    public var editGradientToKnowledgeHead: Bool = true
    /// Whether the knowledge head trains at all. The prompts depend on the knowledge
    /// representation only, so with `false` a retrieval-only run can retune the query head and
    /// the sentinel of a finished editor without touching its prompts.
    public var trainKnowledgeHead: Bool = true
    /// Cosine decay of both learning rates, from their full value at step 0 to 0 at this
    /// step (0: constant rates). A pure function of the step, so resumed runs match.
    public var learningRateDecaySteps: Int = 0
    /// Global gradient-norm clip.
    public var gradientClip: Float = 1
    /// log(p + eps) guard, as the reference.
    public var eps: Float = 1e-8

    public init() {}

    enum CodingKeys: String, CodingKey {
        case featureWidth, representationWidth, promptLength, modelWidth, statementTokens, slotConditioning, leadingToken, subjectWeight, queryEncoderLayers, encoderLearningRate, queryKnowledgeT, queryPrototypeT, contrastiveHingeScale, editHingeScale, contrastiveLambda, unrelatedLambda, questionViewFraction, questionFormFraction, chatFraction, reliabilityLambda, generalityLambda, localityLambda, headLearningRate, promptLearningRate, learningRateDecaySteps, editGradientToKnowledgeHead, trainKnowledgeHead, gradientClip, eps
    }

    /// Absent keys take their defaults, so checkpoints written before a field existed load.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = RecipeConfig()
        featureWidth = try c.decodeIfPresent(Int.self, forKey: .featureWidth) ?? d.featureWidth
        representationWidth = try c.decodeIfPresent(Int.self, forKey: .representationWidth) ?? d.representationWidth
        promptLength = try c.decodeIfPresent(Int.self, forKey: .promptLength) ?? d.promptLength
        modelWidth = try c.decodeIfPresent(Int.self, forKey: .modelWidth) ?? d.modelWidth
        statementTokens = try c.decodeIfPresent(Int.self, forKey: .statementTokens) ?? d.statementTokens
        slotConditioning = try c.decodeIfPresent(Bool.self, forKey: .slotConditioning) ?? d.slotConditioning
        leadingToken = try c.decodeIfPresent(Int.self, forKey: .leadingToken)
        subjectWeight = try c.decodeIfPresent(Float.self, forKey: .subjectWeight) ?? d.subjectWeight
        queryEncoderLayers = try c.decodeIfPresent(Int.self, forKey: .queryEncoderLayers) ?? d.queryEncoderLayers
        encoderLearningRate = try c.decodeIfPresent(Float.self, forKey: .encoderLearningRate) ?? d.encoderLearningRate
        queryKnowledgeT = try c.decodeIfPresent(Float.self, forKey: .queryKnowledgeT) ?? d.queryKnowledgeT
        queryPrototypeT = try c.decodeIfPresent(Float.self, forKey: .queryPrototypeT) ?? d.queryPrototypeT
        contrastiveHingeScale = try c.decodeIfPresent(Float.self, forKey: .contrastiveHingeScale) ?? d.contrastiveHingeScale
        editHingeScale = try c.decodeIfPresent(Float.self, forKey: .editHingeScale) ?? d.editHingeScale
        contrastiveLambda = try c.decodeIfPresent(Float.self, forKey: .contrastiveLambda) ?? d.contrastiveLambda
        unrelatedLambda = try c.decodeIfPresent(Float.self, forKey: .unrelatedLambda) ?? d.unrelatedLambda
        questionViewFraction = try c.decodeIfPresent(Float.self, forKey: .questionViewFraction) ?? d.questionViewFraction
        questionFormFraction = try c.decodeIfPresent(Float.self, forKey: .questionFormFraction) ?? d.questionFormFraction
        chatFraction = try c.decodeIfPresent(Float.self, forKey: .chatFraction) ?? d.chatFraction
        reliabilityLambda = try c.decodeIfPresent(Float.self, forKey: .reliabilityLambda) ?? d.reliabilityLambda
        generalityLambda = try c.decodeIfPresent(Float.self, forKey: .generalityLambda) ?? d.generalityLambda
        localityLambda = try c.decodeIfPresent(Float.self, forKey: .localityLambda) ?? d.localityLambda
        headLearningRate = try c.decodeIfPresent(Float.self, forKey: .headLearningRate) ?? d.headLearningRate
        promptLearningRate = try c.decodeIfPresent(Float.self, forKey: .promptLearningRate) ?? d.promptLearningRate
        learningRateDecaySteps = try c.decodeIfPresent(Int.self, forKey: .learningRateDecaySteps) ?? d.learningRateDecaySteps
        editGradientToKnowledgeHead = try c.decodeIfPresent(Bool.self, forKey: .editGradientToKnowledgeHead) ?? d.editGradientToKnowledgeHead
        trainKnowledgeHead = try c.decodeIfPresent(Bool.self, forKey: .trainKnowledgeHead) ?? d.trainKnowledgeHead
        gradientClip = try c.decodeIfPresent(Float.self, forKey: .gradientClip) ?? d.gradientClip
        eps = try c.decodeIfPresent(Float.self, forKey: .eps) ?? d.eps
    }

    /// Retrieval kept exactly as it is (`recipe train --freeze-retrieval`): the heads, the
    /// sentinel and the editor's query encoder layer take no steps, and the edit losses send
    /// no gradient into the knowledge head, so only the prompt transformer trains. An editor
    /// that already has a query encoder layer (one past stage 3) would otherwise keep
    /// training it on the contrastive losses.
    public mutating func freezeRetrieval() {
        headLearningRate = 0
        encoderLearningRate = 0
        editGradientToKnowledgeHead = false
    }

    /// Throws when a value is out of range.
    public func validate() throws {
        func check(_ ok: Bool, _ what: String) throws {
            if !ok { throw RecipeError.invalidArgument("recipe config: \(what)") }
        }
        try check(featureWidth > 0 && representationWidth > 0 && promptLength > 0 && modelWidth > 0,
                  "widths and prompt length must be positive")
        try check(statementTokens >= 0 && statementTokens <= 512, "statement tokens must be in 0...512")
        try check(!slotConditioning || statementTokens > 0, "slot conditioning acts on the statement attention: it needs statement tokens > 0")
        try check(leadingToken.map { $0 >= 0 } ?? true, "the leading token must be a token id (≥ 0)")
        try check(subjectWeight >= 0 && subjectWeight.isFinite, "the subject weight must be finite and ≥ 0")
        try check((0...1).contains(queryEncoderLayers), "query encoder layers must be 0 or 1")
        try check(queryEncoderLayers == 0 || featureWidth % 4 == 0, "a query encoder needs four feature blocks")
        try check(encoderLearningRate >= 0, "the encoder learning rate must not be negative")
        try check(questionViewFraction >= 0 && questionViewFraction <= 1, "the question view fraction must be in 0...1")
        try check((0...1).contains(questionFormFraction) && (0...1).contains(chatFraction),
                  "the question form and chat fractions must be in 0...1")
        try check(representationWidth <= 16384 && promptLength <= 64 && modelWidth <= 65536, "sizes are implausibly large")
        try check(queryKnowledgeT > 0 && queryPrototypeT > 0, "temperatures must be positive")
        try check(editHingeScale > 0 && editHingeScale.isFinite, "the edit hinge scale must be positive and finite")
        try check(headLearningRate >= 0 && promptLearningRate >= 0 && gradientClip > 0, "learning rates ≥ 0 and clip > 0")
        try check(learningRateDecaySteps >= 0, "learning rate decay steps must not be negative")
        try check([reliabilityLambda, generalityLambda, localityLambda, contrastiveLambda, unrelatedLambda].allSatisfy { $0 >= 0 && $0.isFinite },
                  "loss weights must be finite and ≥ 0")
    }

    /// The weight block of one encoder layer for features of width F: hidden width F/4 and a
    /// feed-forward width of 4·F/4, as all-MiniLM-L6-v2 (`QueryEncoder` checks the loaded encoder).
    public static func encoderLayerWeights(featureWidth F: Int) -> BertLayerWeights {
        BertLayerWeights(C: F / 4, FF: F)
    }

    /// The factor on both learning rates at `step` (0-based): 1 without decay, else the cosine
    /// schedule 0.5·(1 + cos(π·step/decaySteps)), 0 from `learningRateDecaySteps` on.
    public func learningRateFactor(step: Int) -> Float {
        guard learningRateDecaySteps > 0 else { return 1 }
        let t = min(1, Double(step) / Double(learningRateDecaySteps))
        return Float(0.5 * (1 + cos(Double.pi * t)))
    }
}
