// The worker's `AnswerEngine` (built by `recipe serve`): the query head of the editor (through
// the repository's `RecipeFactEncoder`) and the frozen LLM. Asks are generated together
// (`AnswerScheduler`: continuous batching, one decode pass over the weights per token for
// every running answer), each in its own KV cache. Query encoding (a small BERT pass) takes
// no lock: the encoder and the editor hold no mutable state, so retrieval runs in parallel
// with generation and with the ingest thread's encoding. The keys and values of recently used
// continuous prompts are kept (`LlamaPrefixCache`, used by the scheduler's thread under the
// LLM lock), so a question about a fact asked before skips the prompt's rows of the
// prefill. Behind that, optionally, the same keys and values on disk (`PromptStateStore`),
// written for each fact as it is committed (`prepare`, called by the worker's
// `PromptWarmer`, between the scheduler's steps) and at a first ask: then even a first
// question about a fact reads its prompt's rows instead of computing them.
import Foundation
import Models
import Recipe
import Storage
import WorkerAPI

public final class ServeEngine: AnswerEngine, @unchecked Sendable {
    public let lm: LanguageModel
    public let encoder: RecipeFactEncoder
    public let editor: String
    /// Held by the scheduler for each step and by `prepare`.
    private let llmLock = NSLock()
    /// Asks in the scheduler, and when the last one left: background work (`prepare`) runs in
    /// the gaps between asks (an NSLock is not fair: a loop of prepares would otherwise
    /// starve them), but waits at most `idleWaitLimit` for a gap.
    private let waitingLock = NSLock()
    private var asksActive = 0
    private var lastAskEnded: DispatchTime?
    static let idleGap = 0.05, idleWaitLimit = 2.0
    private let prompts: LlamaPrefixCache
    private let scheduler: AnswerScheduler
    /// Builds each answer's input and generates it: the code `recipe eval` measures.
    public let answers: AnswerGenerator
    private let states: PromptStateStore?
    private let metrics: WorkerMetrics

    /// - Parameters:
    ///   - editor: names the checkpoint (`EditorCheckpoint.factEncoder`'s name)
    ///   - promptCacheEntries: continuous prompts whose keys and values are kept
    ///   - states: the prompts' keys and values on disk (nil: none are kept there)
    ///   - metrics: counts the prompt cache's hits and misses
    ///   - maxBatch: answers generated together at most (`limits.maxBatch`)
    public init(lm: LanguageModel, encoder: RecipeFactEncoder, editor: String, promptCacheEntries: Int, states: PromptStateStore?,
         metrics: WorkerMetrics, maxBatch: Int = WorkerConfig.Limits().maxBatch) {
        self.lm = lm
        self.encoder = encoder
        self.editor = editor
        let prompts = LlamaPrefixCache(config: lm.llama.config, capacity: promptCacheEntries)
        let answers = AnswerGenerator(lm: lm, model: encoder.model)
        (self.prompts, self.answers, self.states, self.metrics) = (prompts, answers, states, metrics)
        scheduler = AnswerScheduler(generator: answers, maxBatch: maxBatch, lock: llmLock, join: { ask in
            Self.cache(for: ask, answers: answers, prompts: prompts, states: states, metrics: metrics)
        }, keep: { prefix, cache in
            prompts.store(prefix, from: cache)
            states?.store(prefix, from: cache)
        })
    }

    /// P': rows of the prefix an ask puts in front of the question (the prompt's, and the
    /// editor's leading token if it has one): the rows `PromptStateStore` keeps.
    public static func prefixRows(_ encoder: RecipeFactEncoder) -> Int {
        encoder.promptRows + (encoder.model.config.leadingToken == nil ? 0 : 1)
    }

    public var similarityScale: Float { encoder.model.similarityScale }
    public var leadingToken: Int? { encoder.model.config.leadingToken }
    public var subjectRule: SubjectRule { encoder.model.subjectRule }
    public var refinementCounts: PromptRefiner.Counts? { encoder.refiner?.counts }
    public var promptStateCounts: PromptStateStore.Counts? { states?.counts }
    public var promptStateCapacity: Int { states?.capacity ?? 0 }

    /// Computes and keeps on disk the keys and values of committed facts' prompts that are
    /// not kept yet; returns how many it computed. One batched prefill of their rows (~14 ms
    /// for one prompt, ~27 ms for four on 2 cores: the weights are read once for all) under
    /// the LLM lock, taken once no ask has waited for it or held it for `idleGap` seconds
    /// (or after `idleWaitLimit` seconds of asks back to back, so that it still progresses).
    public func prepare(prompts batch: [[Float]]) throws -> Int {
        guard let states else { return 0 }
        let prefixes = batch.map { encoder.model.prefix($0) }.filter { !states.contains($0) }
        guard !prefixes.isEmpty else { return 0 }
        let giveUp = DispatchTime.now() + Self.idleWaitLimit
        while DispatchTime.now() < giveUp, waitingLock.withLock({
            asksActive > 0 || lastAskEnded.map { DispatchTime.now() < $0 + Self.idleGap } ?? false
        }) { usleep(5_000) }
        return try llmLock.withLock {
            let C = lm.llama.config.embeddingLength
            let caches = prefixes.map { lm.llama.makeCache(capacity: $0.count / C) }
            _ = try lm.llama.forward(batch: prefixes.map { LlamaSequence(tokens: [], prefix: $0) }, caches: caches, logits: .none)
            return zip(prefixes, caches).filter { states.store($0, from: $1) }.count
        }
    }

    public func queryKeys(_ texts: [String]) throws -> [Float] {
        encoder.encodeQueries(texts)
    }

    public func questionTokens(_ question: String, chat: Bool) throws -> [Int] {
        try answers.tokens(of: question, chat: chat)
    }

    /// `AnswerGenerator.answer`'s answer, generated together with the other asks in flight
    /// (`AnswerScheduler`): continuing from the prompt's kept keys and values when it has a
    /// continuous prompt (in memory, else on disk: only the question left to prefill), or
    /// prefilling both and keeping the prompt's rows after.
    public func answer(_ question: [Int], injection: Injection, maxTokens: Int, stop: [String], handOff: Bool,
                shouldStop: @escaping @Sendable () -> Bool) throws -> GeneratedAnswer {
        let C = lm.llama.config.embeddingLength
        let (sequence, _) = answers.input(question, injection: injection)
        guard sequence.tokens.count + sequence.prefix.count / C + maxTokens <= lm.llama.config.contextLength else {
            throw RequestError("too_large", "the question and max_tokens do not fit the model's context (\(lm.llama.config.contextLength) tokens)")
        }
        waitingLock.withLock { asksActive += 1 }
        defer { waitingLock.withLock { asksActive -= 1; lastAskEnded = .now() } }
        return try scheduler.answer(.init(question: question, injection: injection, maxTokens: maxTokens, stop: stop, handOff: handOff,
                                          shouldStop: shouldStop))
    }

    public var batchCounts: BatchCounts? { scheduler.snapshot }

    /// The KV cache an ask joins the batch with, on the scheduler's thread under the LLM
    /// lock: for a continuous prompt, its rows from memory or disk, else an empty cache whose
    /// prefix rows are kept once it is answered.
    private static func cache(for ask: AnswerScheduler.Ask, answers: AnswerGenerator, prompts: LlamaPrefixCache,
                              states: PromptStateStore?, metrics: WorkerMetrics) -> (cache: LlamaKVCache?, keep: [Float]?) {
        guard case .prompt = ask.injection else { return (nil, nil) }
        let llama = answers.lm.llama, C = llama.config.embeddingLength
        let p = answers.input(ask.question, injection: ask.injection).sequence.prefix  // with the leading token, as prefilled
        let reserve = ask.question.count + ask.maxTokens
        if let cached = prompts.lookup(p, reserving: reserve) {
            metrics.promptCache(hit: true)
            return (cached, nil)
        }
        metrics.promptCache(hit: false)
        if let states, let stored = states.lookup(p, reserving: reserve) {
            prompts.store(p, from: stored)
            return (stored, nil)
        }
        return (llama.makeCache(capacity: p.count / C + reserve), p)
    }
}
