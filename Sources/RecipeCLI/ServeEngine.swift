// The worker's `AnswerEngine`: the query head of the editor (through the repository's
// `RecipeFactEncoder`) and the frozen LLM. One generation at a time (a lock around the
// LLM): the decode kernels already use every core, so a queue of waiting asks is as fast
// as interleaving them and keeps one KV cache in memory. Query encoding (a small BERT
// pass) takes no lock: the encoder and the editor hold no mutable state, so retrieval
// runs in parallel with generation and with the ingest loop's encoding.
import Foundation
import Models
import Recipe
import Worker

final class ServeEngine: AnswerEngine, @unchecked Sendable {
    let lm: LanguageModel
    let encoder: RecipeFactEncoder
    private let llmLock = NSLock()

    init(lm: LanguageModel, encoder: RecipeFactEncoder) {
        self.lm = lm
        self.encoder = encoder
    }

    var similarityScale: Float { encoder.model.similarityScale }

    func queryKey(_ question: String) throws -> [Float] {
        encoder.encodeQueries([question])
    }

    func answer(_ question: String, injection: Injection, maxTokens: Int, shouldStop: @escaping @Sendable () -> Bool) throws
        -> (text: String, tokens: Int) {
        let tokens = lm.tokenizer.encode(question)
        guard !tokens.isEmpty else { throw RequestError.invalid("question", "has no tokens") }
        let C = lm.llama.config.embeddingLength
        let (sequence, _) = injection.sequence(tokens, tokenizer: lm.tokenizer, width: C)
        guard sequence.tokens.count + sequence.prefix.count / C + maxTokens <= lm.llama.config.contextLength else {
            throw RequestError("too_large", "the question and max_tokens do not fit the model's context (\(lm.llama.config.contextLength) tokens)")
        }
        let ids = try llmLock.withLock {
            try lm.llama.generate(sequence, maxTokens: maxTokens, stopTokens: lm.stopTokens) { _ in !shouldStop() }
        }
        return (try lm.tokenizer.decode(ids, skipSpecial: true), ids.count)
    }
}
