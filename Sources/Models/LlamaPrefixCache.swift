// The keys and values of recently used prefixes. A fact's continuous prompt is the same for
// every question about it, and since the prompt comes first and attention is causal, so are
// its keys and values at every layer: a question about a fact asked before skips the
// prompt's rows of the prefill (each row costs as much as a token, ~1.1 ms on 2 cores).
// Entries are keyed by the prefix values themselves (no hash collision can hand one fact's
// keys to another) and evicted least recently used first; one entry is L × P × 2 × kvWidth
// floats (138 KiB for SmolLM2-135M with P = 3).
//
// Not thread-safe: the caller serializes use (the worker holds its LLM lock).

public final class LlamaPrefixCache: @unchecked Sendable {
    public let model: Llama
    /// Most entries kept; 0 keeps none (every call computes the prefix).
    public let capacity: Int
    public private(set) var hits = 0
    public private(set) var misses = 0
    private var entries: [[Float]: (cache: LlamaKVCache, lastUse: Int)] = [:]
    private var uses = 0

    public init(model: Llama, capacity: Int) {
        self.model = model
        self.capacity = max(0, capacity)
    }

    public var count: Int { entries.count }

    /// A new KV cache holding `prefix` ([P, C] rows), with room for `reserving` more
    /// positions; the caller continues it with the question's tokens.
    public func cache(for prefix: [Float], reserving extra: Int) throws -> LlamaKVCache {
        uses += 1
        let rows = prefix.count / max(1, model.config.embeddingLength)
        if let e = entries[prefix] {
            hits += 1
            entries[prefix]?.lastUse = uses
            return e.cache.copy(capacity: rows + extra)
        }
        misses += 1
        let cache = model.makeCache(capacity: rows + extra)
        _ = try model.forward(LlamaSequence(tokens: [], prefix: prefix), cache: cache, logits: LlamaLogitRows.none)
        guard capacity > 0 else { return cache }
        if entries.count >= capacity, let oldest = entries.min(by: { $0.value.lastUse < $1.value.lastUse }) {
            entries[oldest.key] = nil
        }
        entries[prefix] = (cache.copy(capacity: rows), uses)
        return cache
    }
}
