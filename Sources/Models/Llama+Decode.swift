// Single-token decode over a KV cache, reading the quantized weights in place
// (quantMatvec: memory-bound, so 0.6 B/weight beats 4 B/weight), and greedy generation.
import Kernels

/// Per-sequence buffers of one decode step, kept in the KV cache.
final class LlamaDecodeScratch {
    /// [C] residual, [C] normed, [NH·HS] query, [C] attention output, [C] projection
    let x, xn, q, attOut, proj: FloatBuffer
    /// [FF] gate, up and hidden
    let gate, up, hidden: FloatBuffer
    /// [NH, capacity] attention probabilities
    var att: FloatBuffer
    /// [V]
    let logits: FloatBuffer

    init(config: LlamaConfig, capacity: Int) {
        let C = config.embeddingLength, FF = config.feedForwardLength
        x = FloatBuffer(count: C); xn = FloatBuffer(count: C)
        q = FloatBuffer(count: config.headCount * config.headSize)
        attOut = FloatBuffer(count: C); proj = FloatBuffer(count: C)
        gate = FloatBuffer(count: FF); up = FloatBuffer(count: FF); hidden = FloatBuffer(count: FF)
        att = FloatBuffer(count: config.headCount * capacity)
        logits = FloatBuffer(count: config.vocabSize)
    }
}

extension Llama {
    /// Appends one token to `cache` and returns the next-token logits [V].
    public func decode(token: Int, cache: LlamaKVCache) throws -> [Float] {
        try checkTokens([token])
        let row = FloatBuffer(count: config.embeddingLength)
        weights.embeddingRow(token, into: row.p)
        return try decode(embeddingRow: row.p, cache: cache)
    }

    /// Appends one embedding row [C] (e.g. a prefix vector) to `cache` and returns the logits [V].
    public func decode(embedding: [Float], cache: LlamaKVCache) throws -> [Float] {
        guard embedding.count == config.embeddingLength else {
            throw ModelError.invalidInput("decode embedding has \(embedding.count) floats, expected C = \(config.embeddingLength)")
        }
        return try embedding.withUnsafeBufferPointer { try decode(embeddingRow: $0.baseAddress!, cache: cache) }
    }

    /// - Parameters:
    ///   - embeddingRow: [C] the input row of the new position
    func decode(embeddingRow: UnsafePointer<Float>, cache: LlamaKVCache) throws -> [Float] {
        let C = config.embeddingLength, NH = config.headCount, NKV = config.headCountKV, HS = config.headSize
        let KVW = config.kvWidth, V = config.vocabSize
        let pos = cache.count
        guard pos + 1 <= config.contextLength else {
            throw ModelError.invalidInput("the KV cache is full: \(pos) positions, context length \(config.contextLength)")
        }
        cache.reserve(pos + 1)
        if cache.decodeScratch == nil || cache.decodeScratch!.att.count < NH * cache.capacity {
            cache.decodeScratch = LlamaDecodeScratch(config: config, capacity: cache.capacity)
        }
        let s = cache.decodeScratch!
        s.x.p.update(from: embeddingRow, count: C)
        let rope = RoPETable(positions: [pos], dims: config.ropeDimensionCount, base: config.ropeFreqBase)
        for l in 0..<config.blockCount {
            let w = weights.blocks[l]
            let kRow = cache.keys(l) + pos * KVW, vRow = cache.values(l) + pos * KVW
            rmsnormForward(s.xn.p, rstd: nil, s.x.p, w.attnNorm, T: 1, C: C, eps: config.rmsEps)
            quantMatvec([QuantMatvecJob(y: s.q.p, w: w.q, x: s.xn.p),
                         QuantMatvecJob(y: kRow, w: w.k, x: s.xn.p),
                         QuantMatvecJob(y: vRow, w: w.v, x: s.xn.p)])
            ropeForward(s.q.p, table: rope, T: 1, NH: NH, HS: HS, stride: NH * HS)
            ropeForward(kRow, table: rope, T: 1, NH: NKV, HS: HS, stride: KVW)
            attentionDecode(out: s.attOut.p, att: s.att.p, q: s.q.p, k: cache.keys(l), v: cache.values(l),
                            kvStride: KVW, Tk: pos + 1, NH: NH, NKV: NKV, HS: HS)
            quantMatvec(s.proj.p, w.o, s.attOut.p)
            for c in 0..<C { s.x.p[c] += s.proj.p[c] }
            rmsnormForward(s.xn.p, rstd: nil, s.x.p, w.ffnNorm, T: 1, C: C, eps: config.rmsEps)
            quantMatvec([QuantMatvecJob(y: s.gate.p, w: w.gate, x: s.xn.p),
                         QuantMatvecJob(y: s.up.p, w: w.up, x: s.xn.p)])
            swigluForward(s.hidden.p, gate: s.gate.p, up: s.up.p, N: config.feedForwardLength)
            quantMatvec(s.proj.p, w.down, s.hidden.p)
            for c in 0..<C { s.x.p[c] += s.proj.p[c] }
        }
        cache.advance(1)
        rmsnormForward(s.xn.p, rstd: nil, s.x.p, weights.outputNorm, T: 1, C: C, eps: config.rmsEps)
        quantMatvec(s.logits.p, weights.lmHeadQuant, s.xn.p)
        return Array(UnsafeBufferPointer(start: s.logits.p, count: V))
    }

    /// Greedy decoding: prefills `sequence` (into `cache`, or a fresh one), then appends the
    /// argmax token until `maxTokens` are produced, a token in `stopTokens` comes (it is not
    /// returned), or `onToken` returns false (that token is returned). `onToken` sees each
    /// token as it is chosen, for streaming.
    @discardableResult
    public func generate(
        _ sequence: LlamaSequence, maxTokens: Int, stopTokens: Set<Int> = [], cache: LlamaKVCache? = nil,
        onToken: (Int) -> Bool = { _ in true }
    ) throws -> [Int] {
        guard maxTokens > 0 else { return [] }
        let cache = cache ?? makeCache(capacity: sequence.tokens.count + sequence.prefix.count / config.embeddingLength + maxTokens)
        var logits = Array(try forward(sequence, cache: cache, logits: .last).last)
        var out: [Int] = []
        while true {
            let next = argmax(logits)
            if stopTokens.contains(next) { break }
            out.append(next)
            if !onToken(next) || out.count == maxTokens || cache.count >= config.contextLength { break }
            logits = try decode(token: next, cache: cache)
        }
        return out
    }
}
