// The one forward of a Llama block, run by every path over the model: prefill of stacked
// sequences (`forward(batch:)`), decode of one new row per KV cache (`decode`), and the
// training pass (`LlamaTrainingPass`), which hands it a tape: the block's slices of the
// activations its input-only backward reads (llm.c's shape: the forward saves exactly what
// the backward needs). Without a tape nothing is kept and nothing else changes.
//
// Per block over the N stacked rows of the residual stream x [N, C]:
//   x += Wo · attention(rope(Wq·rmsnorm(x)), rope(Wk·…), Wv·…)
//   x += Wdown · (silu(Wgate·rmsnorm(x)) ⊙ Wup·rmsnorm(x))
// Each linear layer multiplies each row group with its kernel (`LlamaRowGroup`), so a row's
// result does not depend on the rows stacked with it.
import Kernels
import Parallelism

/// Buffers for one block's intermediates over N stacked rows that nobody keeps; reused by
/// every block of a forward.
struct LlamaBlockScratch {
    /// [N, C] RMSNorm output (before attention, then before the feed-forward)
    let ln: UnsafeMutablePointer<Float>
    /// [N, C] attention output before Wo
    let attOut: UnsafeMutablePointer<Float>
    /// [N, FF] SiLU(gate) ⊙ up
    let hidden: UnsafeMutablePointer<Float>
    /// [N, C] a projection of one-row sequences before it is added to x (the matvec writes,
    /// then adds); nil when no group is `.matvec`
    let proj: UnsafeMutablePointer<Float>?
    /// [N, (NH + 2·NKV)·HS] Q|K|V, per segment [NH, T, Tk] attention probabilities
    /// (concatenated), [N, 2·FF] gate | up: nil when a tape keeps them
    let qkv, att, gateUp: UnsafeMutablePointer<Float>?
}

/// One block's slices of a training forward's saved activations: what the block's
/// input-only backward reads (`LlamaTrainingPass.backward`).
struct LlamaBlockTape {
    /// [N, C] the block's input (attention RMSNorm backward)
    let x: UnsafeMutablePointer<Float>
    /// [N] attention RMSNorm's reciprocal rms
    let rstd1: UnsafeMutablePointer<Float>
    /// [N, (NH + 2·NKV)·HS] Q|K|V after RoPE (attention backward)
    let qkv: UnsafeMutablePointer<Float>
    /// per segment [NH, T, T] attention probabilities, concatenated
    let att: UnsafeMutablePointer<Float>
    /// [N, C] residual after attention (feed-forward RMSNorm backward)
    let xMid: UnsafeMutablePointer<Float>
    /// [N] feed-forward RMSNorm's reciprocal rms
    let rstd2: UnsafeMutablePointer<Float>
    /// [N, 2·FF] gate | up pre-activations (SwiGLU backward)
    let gateUp: UnsafeMutablePointer<Float>
}

extension Llama {
    /// One block over the stacked rows, updating the residual stream x in place. Each
    /// segment with a KV cache writes its keys and values there and attends over its past.
    /// With a tape (training: no caches) it also saves what the backward reads, and runs the
    /// attention of every (sequence, kv group) pair on its own worker.
    /// - Parameters:
    ///   - x: [N, C] residual stream
    ///   - scratch: buffers for what is not kept
    ///   - segments: each sequence's rows in the stack, in stack order
    ///   - groups: the stacked rows by kernel (`LlamaRowGroup`)
    ///   - rope: [N] rows' positions
    ///   - tape: this block's slices of a training forward's saved activations
    func blockForward(_ l: Int, x: UnsafeMutablePointer<Float>, scratch s: LlamaBlockScratch, segments: [LlamaSegment],
                      groups: [LlamaRowGroup], rope: RoPETable, tape: LlamaBlockTape? = nil) {
        let w = weights.blocks[l]
        let C = config.embeddingLength, FF = config.feedForwardLength
        let NH = config.headCount, NKV = config.headCountKV, HS = config.headSize
        let QKV = config.qkvWidth, N = segments.reduce(0) { $0 + $1.count }
        let qkv = tape?.qkv ?? s.qkv!, att = tape?.att ?? s.att!, gateUp = tape?.gateUp ?? s.gateUp!
        // short sequences multiply with the quantized matrices; longer ones with fp32 copies
        let f = groups.contains { $0.kernel == .sgemm } ? weights.fp32Blocks()[l] : nil
        tape?.x.update(from: x, count: N * C)
        // attention
        rmsnormForward(s.ln, rstd: tape?.rstd1, x, w.attnNorm, T: N, C: C, eps: config.rmsEps)
        project(groups, y: qkv, yStride: QKV, x: s.ln, xStride: C,
                quantized: [(w.q, 0), (w.k, NH * HS), (w.v, (NH + NKV) * HS)], fp32: f?.wqkv, proj: s.proj, accumulate: false)
        ropeForward(qkv, table: rope, T: N, NH: NH, HS: HS, stride: QKV)
        ropeForward(qkv + NH * HS, table: rope, T: N, NH: NKV, HS: HS, stride: QKV)
        if tape != nil {
            attendGroups(qkv: qkv, att: att, out: s.attOut, segments: segments)
        } else {
            attend(l, qkv: qkv, att: att, out: s.attOut, segments: segments)
        }
        project(groups, y: x, yStride: C, x: s.attOut, xStride: C, quantized: [(w.o, 0)], fp32: f?.wo, proj: s.proj, accumulate: true)
        tape?.xMid.update(from: x, count: N * C)
        // feed-forward
        rmsnormForward(s.ln, rstd: tape?.rstd2, x, w.ffnNorm, T: N, C: C, eps: config.rmsEps)
        project(groups, y: gateUp, yStride: 2 * FF, x: s.ln, xStride: C, quantized: [(w.gate, 0), (w.up, FF)],
                fp32: f?.wGateUp, proj: s.proj, accumulate: false)
        swigluForwardRows(s.hidden, gateUp: gateUp, T: N, FF: FF)
        project(groups, y: x, yStride: C, x: s.hidden, xStride: FF, quantized: [(w.down, 0)], fp32: f?.wDown, proj: s.proj,
                accumulate: true)
    }

    /// Inference attention: each segment appends its keys and values to its cache (if any)
    /// and attends over the cache. One-row segments of short caches (a batched decode step)
    /// run one per thread, each as it runs alone (`attentionDecode` keeps its heads on one
    /// thread below 256 positions); other segments one after another, each spreading its
    /// heads or BLAS calls over the threads.
    /// - Parameters:
    ///   - qkv: [N, QKV] Q|K|V after RoPE
    ///   - att: per segment [NH, T, Tk] probabilities, concatenated
    ///   - out: [N, C] attention output
    func attend(_ l: Int, qkv: UnsafeMutablePointer<Float>, att: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>,
                segments: [LlamaSegment]) {
        let C = config.embeddingLength, NH = config.headCount, NKV = config.headCountKV, HS = config.headSize
        let QKV = config.qkvWidth, KVW = config.kvWidth
        var attOffsets: [Int] = [], attOffset = 0
        for seg in segments {
            attOffsets.append(attOffset)
            attOffset += NH * seg.count * (seg.past + seg.count)
        }
        let box = UnsafeSendable((qkv, att, out))
        let one = { (i: Int) in
            let (qkv, att, out) = box.value
            let seg = segments[i], q = qkv + seg.start * QKV
            let k: UnsafePointer<Float>, v: UnsafePointer<Float>, stride: Int
            if let cache = seg.cache {
                (k, v, stride) = (UnsafePointer(cache.keys(l)), UnsafePointer(cache.values(l)), KVW)
            } else {
                (k, v, stride) = (UnsafePointer(q + NH * HS), UnsafePointer(q + (NH + NKV) * HS), QKV)
            }
            attentionForward(out: out + seg.start * C, outStride: C, att: att + attOffsets[i],
                             q: q, qStride: QKV, k: k, v: v, kvStride: stride,
                             T: seg.count, Tk: seg.past + seg.count, NH: NH, NKV: NKV, HS: HS)
        }
        for seg in segments {
            guard let cache = seg.cache else { continue }
            let q = qkv + seg.start * QKV, kc = cache.keys(l), vc = cache.values(l)
            for t in 0..<seg.count {
                (kc + (seg.past + t) * KVW).update(from: q + t * QKV + NH * HS, count: KVW)
                (vc + (seg.past + t) * KVW).update(from: q + t * QKV + (NH + NKV) * HS, count: KVW)
            }
        }
        if segments.count > 1 && segments.allSatisfy({ $0.count == 1 && $0.past + 1 < 256 }) {
            parallelFor(segments.count, one)
        } else {
            for i in segments.indices { one(i) }
        }
    }

    /// Training attention: causal over each segment's own rows (no cache), every (sequence,
    /// kv group) pair on its own worker with the loop kernel (`attentionForwardGroups`),
    /// which suits training's many short sequences.
    /// - Parameters:
    ///   - qkv: [N, QKV] Q|K|V after RoPE
    ///   - att: per segment [NH, T, T] probabilities, concatenated
    ///   - out: [N, C] attention output
    func attendGroups(qkv: UnsafeMutablePointer<Float>, att: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>,
                      segments: [LlamaSegment]) {
        let C = config.embeddingLength, NH = config.headCount, NKV = config.headCountKV, HS = config.headSize
        let QKV = config.qkvWidth
        var attOffsets: [Int] = [], attOffset = 0
        for seg in segments {
            precondition(seg.cache == nil && seg.past == 0, "training attention runs without a KV cache")
            attOffsets.append(attOffset)
            attOffset += NH * seg.count * seg.count
        }
        let box = UnsafeSendable((qkv, att, out))
        parallelFor(segments.count * NKV) { task in
            let (qkv, att, out) = box.value
            let s = task / NKV, g = task % NKV, seg = segments[s]
            let q = qkv + seg.start * QKV
            attentionForwardGroups(out: out + seg.start * C, outStride: C, att: att + attOffsets[s],
                                   q: q, qStride: QKV, k: q + NH * HS, v: q + (NH + NKV) * HS, kvStride: QKV,
                                   T: seg.count, Tk: seg.count, NH: NH, NKV: NKV, HS: HS, groups: g..<g + 1)
        }
    }

    /// y (=|+=) x · Wᵀ over the stacked rows, each group with its kernel: W is the
    /// `quantized` matrices side by side (each with its first output column), or `fp32`,
    /// their fp32 copy [Σ OC, C] (needed only for an sgemm group).
    /// - Parameters:
    ///   - y: [N, yStride] output rows
    ///   - x: [N, xStride] input rows
    ///   - proj: [rows, Σ OC] where a `.matvec` group's rows go before they are added (accumulate only)
    func project(_ groups: [LlamaRowGroup], y: UnsafeMutablePointer<Float>, yStride: Int, x: UnsafePointer<Float>, xStride: Int,
                 quantized: [(w: QuantMatrix, column: Int)], fp32: UnsafePointer<Float>?, proj: UnsafeMutablePointer<Float>?,
                 accumulate: Bool) {
        let C = quantized[0].w.cols, OC = quantized.reduce(0) { $0 + $1.w.rows }
        for g in groups {
            let yg = y + g.start * yStride, xg = x + g.start * xStride
            switch g.kernel {
            case .matvec:
                // rows decoded one by one as a lone row is (`quantMatmul` with T = 1: the
                // matvec, then added when accumulating)
                let out = accumulate ? proj! : nil
                quantMatvecBatch(quantized.map { m in
                    out.map { QuantMatvecBatchJob(y: $0 + m.column, yStride: OC, w: m.w, x: xg, xStride: xStride) }
                        ?? QuantMatvecBatchJob(y: yg + m.column, yStride: yStride, w: m.w, x: xg, xStride: xStride)
                }, count: g.count)
                if let out {
                    for t in 0..<g.count { for o in 0..<OC { yg[t * yStride + o] += out[t * OC + o] } }
                }
            case .tile:
                for m in quantized {
                    quantMatmul(yg + m.column, yStride: yStride, xg, xStride: xStride, m.w, T: g.count, accumulate: accumulate)
                }
            case .sgemm:
                precondition(xStride == C && yStride == OC, "sgemm rows are packed")
                matmulForward(yg, xg, fp32!, nil, T: g.count, C: C, OC: OC, accumulate: accumulate)
            }
        }
    }
}

/// Consecutive stacked rows that one kernel multiplies: the rows of all one-row sequences
/// (the decode matvec, row by row), of all short sequences (quantized tiles, whose rows do not
/// affect each other), or of one long sequence (sgemm on the fp32 weights, alone, since its
/// rounding may depend on the row count).
struct LlamaRowGroup {
    enum Kernel: Equatable {
        case matvec, tile, sgemm

        /// The kernel for a sequence of `rows` rows (what `quantMatmul` and the sgemm switch
        /// give it when it runs alone).
        init(rows: Int, quantizedMaxRows: Int) {
            self = rows == 1 ? .matvec : rows <= quantizedMaxRows ? .tile : .sgemm
        }
    }
    let start: Int
    var count: Int
    let kernel: Kernel
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
