// Hyper-parameters of a Llama-family model, read from GGUF metadata (`llama.*` keys).
// Dimension letters as in llm.c: V vocab, C channels, L blocks, FF feed-forward width,
// NH query heads, NKV key/value heads, HS head size.
import WeightFormats

public struct LlamaConfig: Codable, Sendable, Equatable {
    /// V: vocabulary size (rows of `token_embd`).
    public var vocabSize: Int
    /// Longest sequence the model was trained for (positions beyond it are refused).
    public var contextLength: Int
    /// C: width of the residual stream.
    public var embeddingLength: Int
    /// L: number of transformer blocks.
    public var blockCount: Int
    /// FF: hidden width of the SwiGLU feed-forward.
    public var feedForwardLength: Int
    /// NH: query heads.
    public var headCount: Int
    /// NKV: key/value heads (grouped-query attention; NH is a multiple of NKV).
    public var headCountKV: Int
    /// RoPE θ base.
    public var ropeFreqBase: Float
    /// RMSNorm epsilon (stored as float32 in GGUF; used as such).
    public var rmsEps: Float
    /// Rotated dimensions per head (the head size unless the file says fewer).
    public var ropeDimensionCount: Int

    /// HS = C / NH.
    public var headSize: Int { embeddingLength / headCount }
    /// Width of the fused Q|K|V projection: (NH + 2·NKV)·HS.
    public var qkvWidth: Int { (headCount + 2 * headCountKV) * headSize }
    /// Width of one position in the KV cache: NKV·HS.
    public var kvWidth: Int { headCountKV * headSize }

    public init(vocabSize: Int, contextLength: Int, embeddingLength: Int, blockCount: Int, feedForwardLength: Int,
                headCount: Int, headCountKV: Int, ropeFreqBase: Float, rmsEps: Float, ropeDimensionCount: Int) {
        self.vocabSize = vocabSize
        self.contextLength = contextLength
        self.embeddingLength = embeddingLength
        self.blockCount = blockCount
        self.feedForwardLength = feedForwardLength
        self.headCount = headCount
        self.headCountKV = headCountKV
        self.ropeFreqBase = ropeFreqBase
        self.rmsEps = rmsEps
        self.ropeDimensionCount = ropeDimensionCount
    }

    /// Reads and validates the `llama.*` keys of a GGUF file.
    public init(gguf: GGUFFile) throws {
        let file = gguf.path
        func bad(_ key: String, _ expected: String, _ actual: String) -> ModelError {
            .badMetadata(file: file, key: key, expected: expected, actual: actual)
        }
        let arch = (try? gguf.string("general.architecture")) ?? "<missing>"
        guard arch == "llama" else {
            throw ModelError.unsupported(file: file, what: "architecture '\(arch)'", hint: "this engine runs general.architecture = llama")
        }
        func int(_ key: String) throws -> Int {
            do { return try gguf.int(key) } catch { throw bad(key, "an integer", "\(error)") }
        }
        func float(_ key: String) throws -> Float {
            do { return try gguf.float(key) } catch { throw bad(key, "a float", "\(error)") }
        }
        embeddingLength = try int("llama.embedding_length")
        blockCount = try int("llama.block_count")
        feedForwardLength = try int("llama.feed_forward_length")
        headCount = try int("llama.attention.head_count")
        headCountKV = (try? gguf.optionalInt("llama.attention.head_count_kv")) ?? nil ?? headCount
        contextLength = try int("llama.context_length")
        ropeFreqBase = (try? gguf.optionalFloat("llama.rope.freq_base")) ?? nil ?? 10000
        rmsEps = try float("llama.attention.layer_norm_rms_epsilon")
        if let v = (try? gguf.optionalInt("llama.vocab_size")) ?? nil {
            vocabSize = v
        } else if let t = gguf.tensor("token_embd.weight"), t.shape.count == 2 {
            vocabSize = t.shape[1]
        } else {
            throw bad("llama.vocab_size", "present (or a 2-D token_embd.weight)", "missing")
        }
        let hs = headCount > 0 ? embeddingLength / headCount : 0
        ropeDimensionCount = (try? gguf.optionalInt("llama.rope.dimension_count")) ?? nil ?? hs
        // impossible values, each named
        for (k, v) in [("llama.embedding_length", embeddingLength), ("llama.block_count", blockCount),
                       ("llama.feed_forward_length", feedForwardLength), ("llama.attention.head_count", headCount),
                       ("llama.attention.head_count_kv", headCountKV), ("llama.context_length", contextLength),
                       ("llama.vocab_size", vocabSize)] where v <= 0 {
            throw bad(k, "> 0", "\(v)")
        }
        guard embeddingLength % headCount == 0 else {
            throw bad("llama.attention.head_count", "a divisor of embedding_length \(embeddingLength)", "\(headCount)")
        }
        guard headCount % headCountKV == 0 else {
            throw bad("llama.attention.head_count_kv", "a divisor of head_count \(headCount)", "\(headCountKV)")
        }
        guard ropeDimensionCount > 0, ropeDimensionCount <= hs, ropeDimensionCount % 2 == 0 else {
            throw bad("llama.rope.dimension_count", "even and ≤ head size \(hs)", "\(ropeDimensionCount)")
        }
        guard rmsEps > 0, rmsEps.isFinite else { throw bad("llama.attention.layer_norm_rms_epsilon", "> 0", "\(rmsEps)") }
        guard ropeFreqBase > 0, ropeFreqBase.isFinite else { throw bad("llama.rope.freq_base", "> 0", "\(ropeFreqBase)") }
    }
}
