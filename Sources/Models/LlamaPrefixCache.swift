// The keys and values of recently used prefixes. A fact's continuous prompt is the same for
// every question about it, and since the prompt comes first and attention is causal, so are
// its keys and values at every layer: a question about a fact asked before continues from
// them and skips the prompt's rows of the prefill (on a miss the caller prefills prompt and
// question together as usual, then stores the prompt's rows). Entries are keyed by the
// prefix values themselves (no hash collision can hand one fact's keys to another) and
// evicted least recently used first; one entry is L × P × 2 × kvWidth floats (138 KiB for
// SmolLM2-135M with P = 3).
//
// Not thread-safe: the caller serializes use (the worker holds its LLM lock).

public final class LlamaPrefixCache: @unchecked Sendable {
    public let config: LlamaConfig
    /// Most entries kept; 0 keeps none.
    public let capacity: Int
    public private(set) var hits = 0
    public private(set) var misses = 0
    private var entries: [[Float]: (cache: LlamaKVCache, lastUse: Int)] = [:]
    private var uses = 0

    public init(config: LlamaConfig, capacity: Int) {
        self.config = config
        self.capacity = max(0, capacity)
    }

    public var count: Int { entries.count }

    /// A new KV cache holding `prefix`'s keys and values, with room for `extra` more
    /// positions, if they are kept; nil on a miss.
    public func lookup(_ prefix: [Float], reserving extra: Int) -> LlamaKVCache? {
        uses += 1
        guard let e = entries[prefix] else {
            misses += 1
            return nil
        }
        hits += 1
        entries[prefix]?.lastUse = uses
        return e.cache.copy(capacity: e.cache.count + extra)
    }

    /// Keeps the keys and values of `prefix` ([P, C] rows) from `cache`, a sequence that began
    /// with it (its first P positions).
    public func store(_ prefix: [Float], from cache: LlamaKVCache) {
        let rows = prefix.count / max(1, config.embeddingLength)
        guard capacity > 0, rows > 0, cache.count >= rows, entries[prefix] == nil else { return }
        if entries.count >= capacity, let oldest = entries.min(by: { $0.value.lastUse < $1.value.lastUse }) {
            entries[oldest.key] = nil
        }
        entries[prefix] = (cache.copy(positions: rows), uses)
    }
}
