// Decode over KV caches, one new token per sequence, reading the quantized weights in place
// (memory-bound, so 0.6 B/weight beats 4 B/weight), and greedy generation. Several
// sequences decode together in one pass over the weights (`decode(tokens:caches:)`, the
// worker's continuous batching); one sequence is a batch of one. A step is the block
// forward (Llama+Block.swift) over one row per cache, all in one matvec group: every
// per-sequence step (RMSNorm, RoPE, attention over its own cache, the matvec of each weight
// row against its row: `quantMatvecBatch`) is the arithmetic it gets alone, so a sequence's
// logits do not depend on what it is batched with.
import Foundation
import Kernels

/// The stacked buffers of a decode step over B sequences (B ≤ `capacityB`).
final class LlamaDecodeBuffers {
    let capacityB: Int
    /// [B, C] residual, normed, attention output, projection
    let x, ln, attOut, proj: FloatBuffer
    /// [B, (NH + 2·NKV)·HS] Q|K|V
    let qkv: FloatBuffer
    /// per sequence [NH, Tk] attention probabilities, concatenated (grown by `reserve`)
    private(set) var att: FloatBuffer
    /// [B, 2·FF] gate | up, [B, FF] hidden
    let gateUp, hidden: FloatBuffer
    /// [B, V]
    let logits: FloatBuffer

    init(config: LlamaConfig, B: Int) {
        let C = config.embeddingLength, FF = config.feedForwardLength
        capacityB = B
        x = FloatBuffer(count: B * C); ln = FloatBuffer(count: B * C)
        attOut = FloatBuffer(count: B * C); proj = FloatBuffer(count: B * C)
        qkv = FloatBuffer(count: B * config.qkvWidth)
        att = FloatBuffer(count: 0)
        gateUp = FloatBuffer(count: B * 2 * FF); hidden = FloatBuffer(count: B * FF)
        logits = FloatBuffer(count: B * config.vocabSize)
    }

    /// Room for `attCount` probabilities, doubling so that a growing context reallocates rarely.
    func reserve(attCount: Int) {
        if att.count < attCount { att = FloatBuffer(count: max(attCount, 2 * att.count)) }
    }

    /// The block scratch (nothing is kept: inference).
    var scratch: LlamaBlockScratch {
        LlamaBlockScratch(ln: ln.p, attOut: attOut.p, hidden: hidden.p, proj: proj.p, qkv: qkv.p, att: att.p, gateUp: gateUp.p)
    }
}

/// A small free list of decode buffers, shared by concurrent callers under a lock.
final class LlamaDecodePool: @unchecked Sendable {
    private let lock = NSLock()
    private var free: [LlamaDecodeBuffers] = []

    func take(config: LlamaConfig, B: Int) -> LlamaDecodeBuffers {
        lock.lock()
        if let i = free.firstIndex(where: { $0.capacityB >= B }) {
            let b = free.remove(at: i)
            lock.unlock()
            return b
        }
        lock.unlock()
        return LlamaDecodeBuffers(config: config, B: B)
    }

    /// Keeps at most two sets for reuse, the largest.
    func give(_ b: LlamaDecodeBuffers) {
        lock.lock()
        free.append(b)
        free.sort { $0.capacityB > $1.capacityB }
        if free.count > 2 { free.removeLast(free.count - 2) }
        lock.unlock()
    }
}

extension Llama {
    /// Appends one token to `cache` and returns the next-token logits [V].
    public func decode(token: Int, cache: LlamaKVCache) throws -> [Float] {
        try decode(tokens: [token], caches: [cache])[0]
    }

    /// Appends one embedding row [C] (e.g. a prefix vector) to `cache` and returns the logits [V].
    public func decode(embedding: [Float], cache: LlamaKVCache) throws -> [Float] {
        guard embedding.count == config.embeddingLength else {
            throw ModelError.invalidInput("decode embedding has \(embedding.count) floats, expected C = \(config.embeddingLength)")
        }
        return try embedding.withUnsafeBufferPointer { try decode(rows: $0.baseAddress!, caches: [cache]) }[0]
    }

    /// Appends `tokens[b]` to `caches[b]` for every sequence b in one pass over the weights
    /// and returns each sequence's next-token logits [V]: bit for bit those of
    /// `decode(token:cache:)` on each alone.
    public func decode(tokens: [Int], caches: [LlamaKVCache]) throws -> [[Float]] {
        guard tokens.count == caches.count else {
            throw ModelError.invalidInput("\(tokens.count) tokens for \(caches.count) KV caches")
        }
        try checkTokens(tokens)
        let C = config.embeddingLength
        let rows = FloatBuffer(count: max(1, tokens.count) * C)
        for (b, id) in tokens.enumerated() { weights.embeddingRow(id, into: rows.p + b * C) }
        return try decode(rows: rows.p, caches: caches)
    }

    /// - Parameters:
    ///   - rows: [B, C] the input rows of the new positions, one per cache
    func decode(rows: UnsafePointer<Float>, caches: [LlamaKVCache]) throws -> [[Float]] {
        let C = config.embeddingLength, V = config.vocabSize
        let B = caches.count
        guard B > 0 else { return [] }
        if B > 1, Set(caches.map { ObjectIdentifier($0) }).count != B {
            throw ModelError.invalidInput("the same KV cache is passed for two sequences")
        }
        for (b, cache) in caches.enumerated() where cache.count + 1 > config.contextLength {
            throw ModelError.invalidInput("the KV cache\(B > 1 ? " of sequence \(b)" : "") is full: \(cache.count) positions, "
                                          + "context length \(config.contextLength)")
        }
        for cache in caches { cache.reserve(cache.count + 1) }
        // one segment of one row per cache, all multiplied by the matvec
        let segments = caches.enumerated().map { b, cache in LlamaSegment(start: b, count: 1, past: cache.count, cache: cache) }
        let groups = [LlamaRowGroup(start: 0, count: B, kernel: .matvec)]
        let s = decodeBuffers.take(config: config, B: B)
        defer { decodeBuffers.give(s) }
        s.reserve(attCount: LlamaWorkspace.attCount(config, segments))
        s.x.p.update(from: rows, count: B * C)
        let rope = RoPETable(positions: caches.map(\.count), dims: config.ropeDimensionCount, base: config.ropeFreqBase)
        let scratch = s.scratch
        for l in 0..<config.blockCount {
            blockForward(l, x: s.x.p, scratch: scratch, segments: segments, groups: groups, rope: rope)
        }
        for cache in caches { cache.advance(1) }
        rmsnormForward(s.ln.p, rstd: nil, s.x.p, weights.outputNorm, T: B, C: C, eps: config.rmsEps)
        quantMatvecBatch([QuantMatvecBatchJob(y: s.logits.p, yStride: V, w: weights.lmHeadQuant, x: s.ln.p, xStride: C)], count: B)
        return (0..<B).map { b in Array(UnsafeBufferPointer(start: s.logits.p + b * V, count: V)) }
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
