// A Llama-family decoder on the CPU: batched prefill of one or several sequences, with
// optional prefix embeddings in front of the tokens (RECIPE's continuous prompts) and a KV
// cache to continue from. A sequence of up to `quantizedMaxRows` rows multiplies straight
// from the packed quantized weights (`quantMatmul`; one row: the decode matvec); a longer one
// uses cblas_sgemm on fp32 copies. The kernel is chosen per sequence, not for the stacked
// batch, and each kernel computes a row the same way whatever rows it is stacked with, so a
// sequence's logits do not depend on what it is batched with (the worker batches the asks
// of many clients and must answer each as it would alone). The block forward, shared with
// decode and training, is in Llama+Block.swift; decode and generation in Llama+Decode.swift.
// All fp32 activations: results match the fp32/fp64 reference, not
// llama.cpp's 8-bit-activation noise.
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
    /// Decode buffers kept between steps (one set per concurrent caller).
    let decodeBuffers = LlamaDecodePool()
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
        // segments of the stacked rows, placed by kernel: one-row sequences first, then the
        // short ones (quantized tiles), then the long ones (sgemm, each on its own)
        var counts: [Int] = []
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
            counts.append(n)
        }
        let kinds = counts.map { LlamaRowGroup.Kernel(rows: $0, quantizedMaxRows: quantizedMaxRows) }
        var segments = [LlamaSegment?](repeating: nil, count: batch.count)
        var groups: [LlamaRowGroup] = []
        var N = 0
        for kind in [LlamaRowGroup.Kernel.matvec, .tile, .sgemm] {
            for s in batch.indices where kinds[s] == kind {
                segments[s] = LlamaSegment(start: N, count: counts[s], past: caches?[s].count ?? 0, cache: caches?[s])
                if kind != .sgemm, let last = groups.last, last.kernel == kind {
                    groups[groups.count - 1].count += counts[s]
                } else {
                    groups.append(LlamaRowGroup(start: N, count: counts[s], kernel: kind))
                }
                N += counts[s]
            }
        }
        let placed = segments.map { $0! }
        let rowsWanted = try batch.indices.map { s in try requestedRows(logitsPerSequence[s], count: placed[s].count, sequence: s) }
        for seg in placed { seg.cache?.reserve(seg.past + seg.count) }
        let stacked = placed.sorted { $0.start < $1.start }

        let acts = workspaces.take(config: config, segments: stacked)
        defer { workspaces.give(acts) }
        // x [N, C]: prefix rows, then token embeddings
        let x = acts.x, scratch = acts.scratch
        for (s, seq) in batch.enumerated() {
            var row = x.p + placed[s].start * C
            seq.prefix.withUnsafeBufferPointer { row.update(from: $0.baseAddress!, count: seq.prefix.count) }
            row += seq.prefix.count
            for id in seq.tokens { weights.embeddingRow(id, into: row); row += C }
        }
        var positions: [Int] = []
        positions.reserveCapacity(N)
        for seg in stacked { positions += (seg.past..<seg.past + seg.count) }
        let rope = RoPETable(positions: positions, dims: config.ropeDimensionCount, base: config.ropeFreqBase)
        for l in 0..<L {
            blockForward(l, x: x.p, scratch: scratch, segments: stacked, groups: groups, rope: rope)
        }
        for seg in stacked { seg.cache?.advance(seg.count) }
        return try logits(x: x.p, segments: placed, rows: rowsWanted)
    }

    /// The logits of each sequence's requested rows. Sequences with one or two rows wanted
    /// (generation wants the last) take them from the compact LM head together, in one pass
    /// over it (`quantMatvecBatch`: each row as `logitsForRows` computes it alone).
    func logits(x: UnsafePointer<Float>, segments: [LlamaSegment], rows: [[Int]]) throws -> [LlamaOutput] {
        let C = config.embeddingLength, V = config.vocabSize
        let few = rows.indices.filter { (1...2).contains(rows[$0].count) }
        var out = [LlamaOutput?](repeating: nil, count: rows.count)
        if few.count > 1 {
            let n = few.reduce(0) { $0 + rows[$1].count }
            let hn = FloatBuffer(count: n * C), y = FloatBuffer(count: n * V)
            var i = 0
            for s in few {
                for r in rows[s] {
                    rmsnormForward(hn.p + i * C, rstd: nil, x + (segments[s].start + r) * C, weights.outputNorm, T: 1, C: C, eps: config.rmsEps)
                    i += 1
                }
            }
            quantMatvecBatch([QuantMatvecBatchJob(y: y.p, yStride: V, w: weights.lmHeadQuant, x: hn.p, xStride: C)], count: n)
            i = 0
            for s in few {
                let m = rows[s].count
                out[s] = LlamaOutput(rows: rows[s], logits: Array(UnsafeBufferPointer(start: y.p + i * V, count: m * V)), vocabSize: V)
                i += m
            }
        }
        return try rows.indices.map { s in try out[s] ?? logitsForRows(x: x + segments[s].start * C, rows: rows[s]) }
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
}

/// The buffers of one prefill over N stacked rows: the residual stream and the block
/// scratch every block reuses (kept between calls by `LlamaWorkspacePool`).
final class LlamaWorkspace {
    /// rows in use (≤ the capacity the buffers were made for)
    var N: Int
    let capacityN: Int
    let capacityAtt: Int
    /// [N, C] the residual stream
    let x: FloatBuffer
    /// [N, C] RMSNorm output
    let ln: FloatBuffer
    /// [N, (NH + 2·NKV)·HS] Q|K|V after RoPE
    let qkv: FloatBuffer
    /// per segment [NH, T, Tk] attention probabilities, concatenated
    let att: FloatBuffer
    /// [N, C] attention output before Wo, and a projection of one-row sequences before it is added
    let attOut: FloatBuffer, proj: FloatBuffer
    /// [N, 2·FF] gate | up projections
    let gateUp: FloatBuffer
    /// [N, FF] SiLU(gate) ⊙ up
    let hidden: FloatBuffer

    /// Floats held by all the buffers together.
    var floatCount: Int {
        [x, ln, qkv, att, attOut, proj, gateUp, hidden].reduce(0) { $0 + $1.count }
    }

    /// The block scratch (nothing is kept: inference).
    var scratch: LlamaBlockScratch {
        LlamaBlockScratch(ln: ln.p, attOut: attOut.p, hidden: hidden.p, proj: proj.p, qkv: qkv.p, att: att.p, gateUp: gateUp.p)
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
        ln = FloatBuffer(count: N * C)
        qkv = FloatBuffer(count: N * config.qkvWidth)
        att = FloatBuffer(count: attCount)
        attOut = FloatBuffer(count: N * C); proj = FloatBuffer(count: N * C)
        gateUp = FloatBuffer(count: N * 2 * config.feedForwardLength)
        hidden = FloatBuffer(count: N * config.feedForwardLength)
    }
}

/// A small free list of prefill buffers, shared by concurrent callers under a lock.
final class LlamaWorkspacePool: @unchecked Sendable {
    private let lock = NSLock()
    private var free: [LlamaWorkspace] = []
    /// The largest set of buffers kept for reuse: 16 Mi floats (64 MiB) keeps those of a
    /// prefill of ~1,000 rows for SmolLM2. A rarer, longer prefill's buffers, whose attention
    /// part grows with the square of its rows (2.4 GB at 8,100 rows), are freed after it
    /// instead of staying with the process for good.
    static let maximumKeptFloats = 16 << 20

    /// Buffers big enough for `segments` (reused when one is free, else new).
    func take(config: LlamaConfig, segments: [LlamaSegment]) -> LlamaWorkspace {
        let N = segments.reduce(0) { $0 + $1.count }
        let att = LlamaWorkspace.attCount(config, segments)
        lock.lock()
        if let i = free.firstIndex(where: { $0.capacityN >= N && $0.capacityAtt >= att }) {
            let a = free.remove(at: i)
            lock.unlock()
            a.N = N
            return a
        }
        lock.unlock()
        return LlamaWorkspace(config: config, N: N, attCount: att)
    }

    /// Returns buffers for reuse; keeps at most two, the largest under `maximumKeptFloats`.
    func give(_ a: LlamaWorkspace) {
        guard a.floatCount <= Self.maximumKeptFloats else { return }
        lock.lock()
        free.append(a)
        free.sort { $0.capacityN + $0.capacityAtt > $1.capacityN + $1.capacityAtt }
        if free.count > 2 { free.removeLast(free.count - 2) }
        lock.unlock()
    }
}
