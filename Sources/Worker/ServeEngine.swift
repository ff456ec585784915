// The worker's `AnswerEngine` (built by `recipe serve`): the query head of the editor (through the repository's
// `RecipeFactEncoder`) and the frozen LLM. One generation at a time (a lock around the
// LLM): the decode kernels already use every core, so a queue of waiting asks is as fast
// as interleaving them and keeps one KV cache in memory. Query encoding (a small BERT
// pass) takes no lock: the encoder and the editor hold no mutable state, so retrieval
// runs in parallel with generation and with the ingest loop's encoding. The keys and values
// of recently used continuous prompts are kept (`LlamaPrefixCache`, under the same lock), so
// a question about a fact asked before skips the prompt's rows of the prefill. Behind that,
// optionally, the same keys and values on disk (`PromptStateStore`), written for each fact
// as it is committed (`prepare`, called by the worker's `PromptWarmer`) and at a first ask:
// then even a first question about a fact reads its prompt's rows instead of computing them.
import Foundation
import Models
import Recipe
import Storage

public final class ServeEngine: AnswerEngine, @unchecked Sendable {
    public let lm: LanguageModel
    public let encoder: RecipeFactEncoder
    public let editor: String
    private let llmLock = NSLock()
    /// Asks waiting for or holding `llmLock`, and when the last one let go of it: background
    /// work (`prepare`) runs in the gaps between asks (an NSLock is not fair: a loop of
    /// prepares would otherwise starve them), but waits at most `idleWaitLimit` for a gap.
    private let waitingLock = NSLock()
    private var asksActive = 0
    private var lastAskEnded: DispatchTime?
    static let idleGap = 0.05, idleWaitLimit = 2.0
    private let prompts: LlamaPrefixCache
    /// Builds each answer's input and generates it: the code `recipe eval` measures.
    public let answers: AnswerGenerator
    private let states: PromptStateStore?
    private let metrics: WorkerMetrics

    /// - Parameters:
    ///   - editor: names the checkpoint (`EditorCheckpoint.factEncoder`'s name)
    ///   - promptCacheEntries: continuous prompts whose keys and values are kept
    ///   - states: the prompts' keys and values on disk (nil: none are kept there)
    ///   - metrics: counts the prompt cache's hits and misses
    public init(lm: LanguageModel, encoder: RecipeFactEncoder, editor: String, promptCacheEntries: Int, states: PromptStateStore?,
         metrics: WorkerMetrics) {
        self.lm = lm
        self.encoder = encoder
        self.editor = editor
        prompts = LlamaPrefixCache(config: lm.llama.config, capacity: promptCacheEntries)
        answers = AnswerGenerator(lm: lm, model: encoder.model)
        self.states = states
        self.metrics = metrics
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

    /// `AnswerGenerator.answer` under the LLM lock, continuing from the prompt's kept keys
    /// and values when it has a continuous prompt (in memory, else on disk: only the
    /// question left to prefill), or prefilling both and keeping the prompt's rows after.
    public func answer(_ question: [Int], injection: Injection, maxTokens: Int, stop: [String], handOff: Bool,
                shouldStop: @escaping @Sendable () -> Bool) throws -> GeneratedAnswer {
        let C = lm.llama.config.embeddingLength
        let (sequence, _) = answers.input(question, injection: injection)
        guard sequence.tokens.count + sequence.prefix.count / C + maxTokens <= lm.llama.config.contextLength else {
            throw RequestError("too_large", "the question and max_tokens do not fit the model's context (\(lm.llama.config.contextLength) tokens)")
        }
        return try askingForLLM { () throws -> GeneratedAnswer in
            // The client may have left while this ask waited for the LLM: skip the prefill.
            if shouldStop() { return GeneratedAnswer(text: "", tokens: [], stopReason: .cancelled) }
            var cache: LlamaKVCache?, keep: [Float]?
            if case .prompt = injection {
                let p = sequence.prefix  // the prompt with the editor's leading token, as prefilled
                cache = prompts.lookup(p, reserving: question.count + maxTokens)
                metrics.promptCache(hit: cache != nil)
                if cache == nil, let states, let stored = states.lookup(p, reserving: question.count + maxTokens) {
                    prompts.store(p, from: stored)
                    cache = stored
                }
                if cache == nil {
                    cache = lm.llama.makeCache(capacity: sequence.prefix.count / C + question.count + maxTokens)
                    keep = p
                }
            }
            let answer = try answers.answer(question, injection: injection, maxTokens: maxTokens, stop: stop, handOff: handOff,
                                            cache: cache, shouldStop: shouldStop)
            if let keep, let cache {
                prompts.store(keep, from: cache)
                states?.store(keep, from: cache)
            }
            return answer
        }
    }

    /// `body` under the LLM lock, counted in `asksActive` from before the lock is asked for
    /// until it is let go (then `lastAskEnded` is set).
    private func askingForLLM<T>(_ body: () throws -> T) rethrows -> T {
        waitingLock.withLock { asksActive += 1 }
        llmLock.lock()
        defer {
            llmLock.unlock()
            waitingLock.withLock { asksActive -= 1; lastAskEnded = .now() }
        }
        return try body()
    }
}
