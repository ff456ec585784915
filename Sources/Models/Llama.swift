// A Llama-family decoder on the CPU: batched prefill of one or several sequences, with
// optional prefix embeddings in front of the tokens (RECIPE's continuous prompts) and a KV
// cache to continue from. Up to `quantizedMaxRows` stacked rows multiply straight from the
// packed quantized weights (`quantMatmul`); longer prefills use cblas_sgemm on fp32 copies.
// Decode and generation are in Llama+Decode.swift. All fp32 activations: results match
// the fp32/fp64 reference, not llama.cpp's 8-bit-activation noise.
//
// A Llama is immutable after loading and may be used from several threads at once; a
// LlamaKVCache belongs to one sequence and one thread at a time.
//
// Follows llama2.c / llm.c: x is the residual stream [N, C]; each block is
//   x += Wo · attention(rope(Wq·rmsnorm(x)), rope(Wk·…), Wv·…)
//   x += Wdown · (silu(Wgate·rmsnorm(x)) ⊙ Wup·rmsnorm(x))
// and logits = lm_head · rmsnorm(x). RoPE is GGML's NORM mode (adjacent pairs) because
// the GGUF converter permuted the Q/K rows. Reference: goldens/reference/smollm2_ref.py.
import Foundation
import Kernels
import WeightFormats

/// One input sequence: `prefix` embedding rows [P, C] (P may be 0) followed by `tokens`.
public struct LlamaSequence: Sendable, Equatable {
    /// [P, C] row-major
    public var prefix: [Float]
    public var tokens: [Int]
    public init(tokens: [Int], prefix: [Float] = []) {
        self.tokens = tokens
        self.prefix = prefix
    }
}

/// Which positions of a sequence (counted over prefix + tokens of this call) get logits.
public enum LlamaLogitRows: Sendable, Equatable {
    case none
    case last
    case all
    case rows([Int])
}

/// Logits for the requested rows of one sequence.
public struct LlamaOutput: Sendable {
    /// Row indices within the call's prefix + tokens.
    public let rows: [Int]
    /// [rows.count, V]
    public let logits: [Float]
    public let vocabSize: Int

    /// The logits of the i-th requested row.
    public func logits(at i: Int) -> ArraySlice<Float> { logits[i * vocabSize..<(i + 1) * vocabSize] }
    /// The logits of the last requested row (there must be one: not for `.none`).
    public var last: ArraySlice<Float> { logits(at: rows.count - 1) }
}

public final class Llama: @unchecked Sendable {
    public let config: LlamaConfig
    public let weights: LlamaWeights
    /// Prefill buffers kept between calls: fresh multi-megabyte buffers cost a page fault per
    /// 4 KiB, which was 10% of a 512-token prefill.
    let workspaces = LlamaWorkspacePool()
    /// Prefills of at most this many rows multiply with the quantized weights
    /// (`quantMatmul`); longer ones use fp32 sgemm. `RECIPE_QUANT_PREFILL_ROWS` overrides it.
    /// Set it before concurrent use, if at all.
    public var quantizedMaxRows: Int = {
        if let s = ProcessInfo.processInfo.environment["RECIPE_QUANT_PREFILL_ROWS"], let n = Int(s) { return n }
        return 32
    }()

    public init(weights: LlamaWeights) {
        config = weights.config
        self.weights = weights
        _ = Threads.count  // hands the thread count to OpenBLAS before the first sgemm
    }

    /// Reads the config and binds every tensor of a parsed GGUF file.
    public convenience init(gguf: GGUFFile) throws {
        let config = try LlamaConfig(gguf: gguf)
        try self.init(weights: LlamaWeights(gguf: gguf, config: config))
    }

    /// Maps, parses and binds the GGUF file at `path`.
    public convenience init(path: String) throws {
        let gguf: GGUFFile
        do { gguf = try GGUFFile(path: path) } catch {
            throw ModelError.unsupported(file: path, what: "the file", hint: "\(error)")
        }
        try self.init(gguf: gguf)
    }

    /// A fresh KV cache for this model.
    public func makeCache(capacity: Int = 256) -> LlamaKVCache { LlamaKVCache(config: config, capacity: capacity) }

    /// The token embedding rows [T, C] of `tokens` (to build prefixes from).
    public func embeddingRows(of tokens: [Int]) throws -> [Float] {
        let C = config.embeddingLength
        try checkTokens(tokens)
        var out = [Float](repeating: 0, count: tokens.count * C)
        out.withUnsafeMutableBufferPointer { o in
            for (t, id) in tokens.enumerated() { weights.embeddingRow(id, into: o.baseAddress! + t * C) }
        }
        return out
    }

    func checkTokens(_ tokens: [Int]) throws {
        for (i, id) in tokens.enumerated() where id < 0 || id >= config.vocabSize {
            throw ModelError.invalidInput("token id \(id) at index \(i) is outside the vocabulary 0..<\(config.vocabSize)")
        }
    }

    /// Runs one sequence, optionally continuing `cache` (which it extends), and returns the
    /// logits of the requested rows.
    public func forward(_ sequence: LlamaSequence, cache: LlamaKVCache? = nil, logits: LlamaLogitRows = .last) throws -> LlamaOutput {
        try forward(batch: [sequence], caches: cache.map { [$0] }, logits: logits)[0]
    }

    /// Runs several independent sequences in one pass: their rows are stacked so the big
    /// matmuls are shared, and each attends only to itself (and its own cache, if given).
    public func forward(batch: [LlamaSequence], caches: [LlamaKVCache]? = nil, logits: LlamaLogitRows = .last) throws -> [LlamaOutput] {
        try forward(batch: batch, caches: caches, logitsPerSequence: Array(repeating: logits, count: batch.count))
    }

    /// `forward(batch:caches:logits:)` with a choice of logit rows for each sequence (e.g. the
    /// target positions of teacher-forced evaluation, which differ between sequences).
    public func forward(batch: [LlamaSequence], caches: [LlamaKVCache]? = nil, logitsPerSequence: [LlamaLogitRows]) throws -> [LlamaOutput] {
        let C = config.embeddingLength, L = config.blockCount
        guard logitsPerSequence.count == batch.count else {
            throw ModelError.invalidInput("\(logitsPerSequence.count) logit choices for \(batch.count) sequences")
        }
        if let caches, caches.count != batch.count {
            throw ModelError.invalidInput("\(caches.count) caches for \(batch.count) sequences")
        }
        if let caches, Set(caches.map { ObjectIdentifier($0) }).count != caches.count {
            throw ModelError.invalidInput("the same KV cache is passed for two sequences")
        }
        // segments of the stacked rows
        var segments: [LlamaSegment] = []
        var N = 0
        for (s, seq) in batch.enumerated() {
            guard seq.prefix.count % C == 0 else {
                throw ModelError.invalidInput("sequence \(s): prefix has \(seq.prefix.count) floats, not a multiple of C = \(C)")
            }
            try checkTokens(seq.tokens)
            let n = seq.prefix.count / C + seq.tokens.count
            guard n > 0 else { throw ModelError.invalidInput("sequence \(s) is empty (no prefix rows, no tokens)") }
            let past = caches?[s].count ?? 0
            guard past + n <= config.contextLength else {
                throw ModelError.invalidInput("sequence \(s): \(past) cached + \(n) new positions exceed the context length \(config.contextLength)")
            }
            segments.append(LlamaSegment(start: N, count: n, past: past, cache: caches?[s]))
            N += n
        }
        let rowsWanted = try batch.indices.map { s in try requestedRows(logitsPerSequence[s], count: segments[s].count, sequence: s) }
        for seg in segments { seg.cache?.reserve(seg.past + seg.count) }

        let acts = workspaces.take(config: config, segments: segments)
        defer { workspaces.give(acts) }
        // x [N, C]: prefix rows, then token embeddings
        let x = acts.x
        for (s, seq) in batch.enumerated() {
            var row = x.p + segments[s].start * C
            seq.prefix.withUnsafeBufferPointer { row.update(from: $0.baseAddress!, count: seq.prefix.count) }
            row += seq.prefix.count
            for id in seq.tokens { weights.embeddingRow(id, into: row); row += C }
        }
        var positions: [Int] = []
        positions.reserveCapacity(N)
        for seg in segments { positions += (seg.past..<seg.past + seg.count) }
        let rope = RoPETable(positions: positions, dims: config.ropeDimensionCount, base: config.ropeFreqBase)
        for l in 0..<L {
            blockForward(l, x: x.p, acts: acts, segments: segments, rope: rope)
        }
        for seg in segments { seg.cache?.advance(seg.count) }

        return try batch.indices.map { s in
            try logitsForRows(x: x.p + segments[s].start * C, rows: rowsWanted[s])
        }
    }

    func requestedRows(_ which: LlamaLogitRows, count n: Int, sequence s: Int) throws -> [Int] {
        switch which {
        case .none: return []
        case .last: return [n - 1]
        case .all: return Array(0..<n)
        case let .rows(r):
            if let bad = r.first(where: { $0 < 0 || $0 >= n }) {
                throw ModelError.invalidInput("sequence \(s): logits row \(bad) outside 0..<\(n)")
            }
            return r
        }
    }

    /// Final RMSNorm and LM head for the chosen rows of one sequence's residual stream.
    /// - Parameters:
    ///   - x: [n, C] the sequence's residual rows after the last block
    func logitsForRows(x: UnsafePointer<Float>, rows: [Int]) throws -> LlamaOutput {
        let C = config.embeddingLength, V = config.vocabSize, M = rows.count
        guard M > 0 else { return LlamaOutput(rows: [], logits: [], vocabSize: V) }
        let hn = FloatBuffer(count: M * C)
        for (i, r) in rows.enumerated() {
            rmsnormForward(hn.p + i * C, rstd: nil, x + r * C, weights.outputNorm, T: 1, C: C, eps: config.rmsEps)
        }
        var out = [Float](repeating: 0, count: M * V)
        out.withUnsafeMutableBufferPointer { o in
            if M <= 2 {
                // a few rows: stream the compact LM head (Q8_0 ≈ 1 B/weight) instead of fp32
                for i in 0..<M { quantMatvec(o.baseAddress! + i * V, weights.lmHeadQuant, hn.p + i * C) }
            } else {
                matmulForward(o.baseAddress!, hn.p, weights.lmHeadFP32(), nil, T: M, C: C, OC: V)
            }
        }
        return LlamaOutput(rows: rows, logits: out, vocabSize: V)
    }

    /// One block over the stacked rows, updating the residual stream x in place.
    /// - Parameters:
    ///   - x: [N, C] residual stream
    ///   - acts: buffers for this block's intermediates (one set per block for training)
    func blockForward(_ l: Int, x: UnsafeMutablePointer<Float>, acts a: LlamaBlockActivations, segments: [LlamaSegment], rope: RoPETable) {
        let w = weights.blocks[l]
        let C = config.embeddingLength, FF = config.feedForwardLength
        let NH = config.headCount, NKV = config.headCountKV, HS = config.headSize
        let QKV = config.qkvWidth, KVW = config.kvWidth, N = a.N
        // short prefills multiply with the quantized matrices; longer ones with fp32 copies
        let f = N <= quantizedMaxRows ? nil : weights.fp32Blocks()[l]
        // attention
        rmsnormForward(a.ln1.p, rstd: a.rstd1.p, x, w.attnNorm, T: N, C: C, eps: config.rmsEps)
        if N <= quantizedMaxRows {
            quantMatmul(a.qkv.p, yStride: QKV, a.ln1.p, xStride: C, w.q, T: N)
            quantMatmul(a.qkv.p + NH * HS, yStride: QKV, a.ln1.p, xStride: C, w.k, T: N)
            quantMatmul(a.qkv.p + (NH + NKV) * HS, yStride: QKV, a.ln1.p, xStride: C, w.v, T: N)
        } else {
            matmulForward(a.qkv.p, a.ln1.p, f!.wqkv, nil, T: N, C: C, OC: QKV)
        }
        ropeForward(a.qkv.p, table: rope, T: N, NH: NH, HS: HS, stride: QKV)
        ropeForward(a.qkv.p + NH * HS, table: rope, T: N, NH: NKV, HS: HS, stride: QKV)
        var attOffset = 0
        for seg in segments {
            let qkv = a.qkv.p + seg.start * QKV
            let k: UnsafePointer<Float>, v: UnsafePointer<Float>, stride: Int
            if let cache = seg.cache {
                let kc = cache.keys(l), vc = cache.values(l)
                for t in 0..<seg.count {
                    (kc + (seg.past + t) * KVW).update(from: qkv + t * QKV + NH * HS, count: KVW)
                    (vc + (seg.past + t) * KVW).update(from: qkv + t * QKV + (NH + NKV) * HS, count: KVW)
                }
                (k, v, stride) = (UnsafePointer(kc), UnsafePointer(vc), KVW)
            } else {
                (k, v, stride) = (UnsafePointer(qkv + NH * HS), UnsafePointer(qkv + (NH + NKV) * HS), QKV)
            }
            let Tk = seg.past + seg.count
            attentionForward(out: a.attOut.p + seg.start * C, outStride: C, att: a.att.p + attOffset,
                             q: qkv, qStride: QKV, k: k, v: v, kvStride: stride,
                             T: seg.count, Tk: Tk, NH: NH, NKV: NKV, HS: HS)
            attOffset += NH * seg.count * Tk
        }
        if N <= quantizedMaxRows {
            quantMatmul(x, yStride: C, a.attOut.p, xStride: C, w.o, T: N, accumulate: true)
        } else {
            matmulForward(x, a.attOut.p, f!.wo, nil, T: N, C: C, OC: C, accumulate: true)
        }
        // feed-forward
        rmsnormForward(a.ln2.p, rstd: a.rstd2.p, x, w.ffnNorm, T: N, C: C, eps: config.rmsEps)
        if N <= quantizedMaxRows {
            quantMatmul(a.gateUp.p, yStride: 2 * FF, a.ln2.p, xStride: C, w.gate, T: N)
            quantMatmul(a.gateUp.p + FF, yStride: 2 * FF, a.ln2.p, xStride: C, w.up, T: N)
        } else {
            matmulForward(a.gateUp.p, a.ln2.p, f!.wGateUp, nil, T: N, C: C, OC: 2 * FF)
        }
        swigluForwardRows(a.hidden.p, gateUp: a.gateUp.p, T: N, FF: FF)
        if N <= quantizedMaxRows {
            quantMatmul(x, yStride: C, a.hidden.p, xStride: FF, w.down, T: N, accumulate: true)
        } else {
            matmulForward(x, a.hidden.p, f!.wDown, nil, T: N, C: FF, OC: C, accumulate: true)
        }
    }
}

/// Where one sequence's rows sit in the stacked batch.
struct LlamaSegment {
    /// first row in the stacked [N, C] stream
    let start: Int
    /// rows of this call (prefix + tokens)
    let count: Int
    /// positions already in the cache (0 without one)
    let past: Int
    let cache: LlamaKVCache?
}

/// The intermediates of one block's forward over N stacked rows (llm.c's ActivationTensors,
/// per block). Inference reuses one set for every block; a training forward keeps one set
/// per block, plus each block's input x, so the backward can read them.
final class LlamaBlockActivations {
    /// rows in use (≤ the capacity the buffers were made for)
    var N: Int
    let capacityN: Int
    let capacityAtt: Int
    /// [N, C] the residual stream (inference only; a training forward keeps each block's input)
    let x: FloatBuffer
    /// [N, C] RMSNorm output before attention, and its [N] rstd
    let ln1: FloatBuffer, rstd1: FloatBuffer
    /// [N, (NH + 2·NKV)·HS] Q|K|V after RoPE
    let qkv: FloatBuffer
    /// per segment [NH, T, Tk] attention probabilities, concatenated
    let att: FloatBuffer
    /// [N, C] attention output before Wo
    let attOut: FloatBuffer
    /// [N, C] RMSNorm output before the feed-forward, and its [N] rstd
    let ln2: FloatBuffer, rstd2: FloatBuffer
    /// [N, 2·FF] gate | up projections
    let gateUp: FloatBuffer
    /// [N, FF] SiLU(gate) ⊙ up
    let hidden: FloatBuffer

    /// Floats held by all the buffers together.
    var floatCount: Int {
        [x, ln1, rstd1, qkv, att, attOut, ln2, rstd2, gateUp, hidden].reduce(0) { $0 + $1.count }
    }

    static func attCount(_ config: LlamaConfig, _ segments: [LlamaSegment]) -> Int {
        segments.reduce(0) { $0 + config.headCount * $1.count * ($1.past + $1.count) }
    }

    init(config: LlamaConfig, N: Int, attCount: Int) {
        let C = config.embeddingLength
        self.N = N
        capacityN = N
        capacityAtt = attCount
        x = FloatBuffer(count: N * C)
        ln1 = FloatBuffer(count: N * C); rstd1 = FloatBuffer(count: N)
        qkv = FloatBuffer(count: N * config.qkvWidth)
        att = FloatBuffer(count: attCount)
        attOut = FloatBuffer(count: N * C)
        ln2 = FloatBuffer(count: N * C); rstd2 = FloatBuffer(count: N)
        gateUp = FloatBuffer(count: N * 2 * config.feedForwardLength)
        hidden = FloatBuffer(count: N * config.feedForwardLength)
    }
}

/// A small free list of prefill buffers, shared by concurrent callers under a lock.
final class LlamaWorkspacePool: @unchecked Sendable {
    private let lock = NSLock()
    private var free: [LlamaBlockActivations] = []
    /// The largest set of buffers kept for reuse: 16 Mi floats (64 MiB) keeps those of a
    /// prefill of ~1,000 rows for SmolLM2. A rarer, longer prefill's buffers, whose attention
    /// part grows with the square of its rows (2.4 GB at 8,100 rows), are freed after it
    /// instead of staying with the process for good.
    static let maximumKeptFloats = 16 << 20

    /// Buffers big enough for `segments` (reused when one is free, else new).
    func take(config: LlamaConfig, segments: [LlamaSegment]) -> LlamaBlockActivations {
        let N = segments.reduce(0) { $0 + $1.count }
        let att = LlamaBlockActivations.attCount(config, segments)
        lock.lock()
        if let i = free.firstIndex(where: { $0.capacityN >= N && $0.capacityAtt >= att }) {
            let a = free.remove(at: i)
            lock.unlock()
            a.N = N
            return a
        }
        lock.unlock()
        return LlamaBlockActivations(config: config, N: N, attCount: att)
    }

    /// Returns buffers for reuse; keeps at most two, the largest under `maximumKeptFloats`.
    func give(_ a: LlamaBlockActivations) {
        guard a.floatCount <= Self.maximumKeptFloats else { return }
        lock.lock()
        free.append(a)
        free.sort { $0.capacityN + $0.capacityAtt > $1.capacityN + $1.capacityAtt }
        if free.count > 2 { free.removeLast(free.count - 2) }
        lock.unlock()
    }
}
