// The worker's `AnswerEngine`: the query head of the editor (through the repository's
// `RecipeFactEncoder`) and the frozen LLM. One generation at a time (a lock around the
// LLM): the decode kernels already use every core, so a queue of waiting asks is as fast
// as interleaving them and keeps one KV cache in memory. Query encoding (a small BERT
// pass) takes no lock: the encoder and the editor hold no mutable state, so retrieval
// runs in parallel with generation and with the ingest loop's encoding. The keys and values
// of recently used continuous prompts are kept (`LlamaPrefixCache`, under the same lock), so
// a question about a fact asked before skips the prompt's rows of the prefill.
import Foundation
import Models
import Recipe
import Storage
import Worker

final class ServeEngine: AnswerEngine, @unchecked Sendable {
    let lm: LanguageModel
    let encoder: RecipeFactEncoder
    private let llmLock = NSLock()
    private let prompts: LlamaPrefixCache
    private let metrics: WorkerMetrics

    /// - Parameters:
    ///   - promptCacheEntries: continuous prompts whose keys and values are kept
    ///   - metrics: counts the prompt cache's hits and misses
    init(lm: LanguageModel, encoder: RecipeFactEncoder, promptCacheEntries: Int, metrics: WorkerMetrics) {
        self.lm = lm
        self.encoder = encoder
        prompts = LlamaPrefixCache(config: lm.llama.config, capacity: promptCacheEntries)
        self.metrics = metrics
    }

    var similarityScale: Float { encoder.model.similarityScale }
    var leadingToken: Int? { encoder.model.config.leadingToken }
    var subjectRule: SubjectRule { encoder.model.subjectRule }
    var refinementCounts: PromptRefiner.Counts? { encoder.refiner?.counts }

    func queryKey(_ question: String) throws -> [Float] {
        encoder.encodeQueries([question])
    }

    func answer(_ question: String, injection: Injection, maxTokens: Int, shouldStop: @escaping @Sendable () -> Bool) throws
        -> (text: String, tokens: Int) {
        let tokens = lm.tokenizer.encode(question)
        guard !tokens.isEmpty else { throw RequestError.invalid("question", "has no tokens") }
        let C = lm.llama.config.embeddingLength
        var injection = injection
        if case let .prompt(p) = injection { injection = .prompt(encoder.model.prefix(p)) }  // the leading token, if any
        let (sequence, _) = injection.sequence(tokens, tokenizer: lm.tokenizer, width: C)
        guard sequence.tokens.count + sequence.prefix.count / C + maxTokens <= lm.llama.config.contextLength else {
            throw RequestError("too_large", "the question and max_tokens do not fit the model's context (\(lm.llama.config.contextLength) tokens)")
        }
        let ids = try llmLock.withLock { () throws -> [Int] in
            // With a continuous prompt: continue from its kept keys and values (only the
            // question left to prefill), or prefill both and keep the prompt's rows after.
            var input = sequence, cache: LlamaKVCache?, keep: [Float]?
            if case let .prompt(p) = injection {
                cache = prompts.lookup(p, reserving: tokens.count + maxTokens)
                metrics.promptCache(hit: cache != nil)
                if cache != nil {
                    input = LlamaSequence(tokens: tokens)
                } else {
                    cache = lm.llama.makeCache(capacity: sequence.prefix.count / C + tokens.count + maxTokens)
                    keep = p
                }
            }
            let ids = try lm.llama.generate(input, maxTokens: maxTokens, stopTokens: lm.stopTokens, cache: cache) { _ in !shouldStop() }
            if let keep, let cache { prompts.store(keep, from: cache) }
            return ids
        }
        return (try lm.tokenizer.decode(ids, skipSpecial: true), ids.count)
    }
}
