// Training through the frozen Llama: a forward over a batch of (prefix + tokens) sequences
// that keeps every block's activations, logits only at the loss rows, and a backward that
// turns d loss / d logits into d loss / d input rows (the continuous prompts of RECIPE,
// qizhou000/RECIPE editors/recipe/recipe.py). The LLM's weights stay frozen, so no weight
// gradient is ever formed: every linear layer's backward is one sgemm dX = dY · W.
//
// The forward is inference's block forward (`Llama.blockForward`) with a tape: llm.c's
// layout (train_gpt2.c), the pass owning its activations and gradients as flat buffers, one
// slice per block, grown on demand and reused across calls. Per block l over the N stacked
// rows the tape keeps exactly what the input-only backward reads (`LlamaBlockTape`):
//   xIn[l]   [N, C]          block input (RMSNorm backward)
//   rstd1[l] [N]             attention RMSNorm's reciprocal rms
//   qkv[l]   [N, QKV]        Q|K|V after RoPE (attention backward)
//   att[l]   Σ_s NH·T_s²     attention probabilities per sequence
//   xMid[l]  [N, C]          residual after attention (feed-forward RMSNorm backward)
//   rstd2[l] [N]
//   gateUp[l][N, 2·FF]       gate|up pre-activations (SwiGLU backward)
// The normed inputs, the attention output and the SwiGLU output feed only matmuls against
// frozen weights, whose input gradient does not need them, so they live in shared scratch.
// Every row is multiplied by sgemm on the fp32 weights, all N in one call.
//
// A sequence's rows after its last loss row cannot reach any loss (causal attention), so
// the pass runs each sequence only up to its last loss row.
//
// Use (one pass object per training loop; it is not thread-safe, it uses all cores itself):
//     let pass = model.makeTrainingPass()
//     let out = try pass.forward(batch: sequences, lossRows: rows)   // logits at the loss rows
//     let dPrefix = try pass.backward(dLogits: gradients)            // [[P_s · C]]
import Kernels
import Parallelism

extension Llama {
    /// A training pass over this (frozen) model; keep it to reuse its buffers across steps.
    public func makeTrainingPass() -> LlamaTrainingPass { LlamaTrainingPass(model: self) }
}

/// Wall-clock seconds of the parts of the last forward and backward.
public struct LlamaTrainingTimings: Sendable, Equatable {
    /// embedding, the blocks, and the final RMSNorm
    public var forwardBlocks: Double = 0
    /// logits at the loss rows: lmHead[V, C] · hn
    public var forwardHead: Double = 0
    /// dhn = dLogits · lmHead and the final RMSNorm's backward
    public var backwardHead: Double = 0
    /// the blocks' input-only backward
    public var backwardBlocks: Double = 0
    public var total: Double { forwardBlocks + forwardHead + backwardHead + backwardBlocks }
    public init() {}
}

public final class LlamaTrainingPass {
    public let model: Llama
    public var config: LlamaConfig { model.config }
    /// Where the time of the last forward and backward went.
    public private(set) var timings = LlamaTrainingTimings()

    // the tape of the last forward
    private var segments: [LlamaSegment] = []
    /// per sequence: rows given (prefix + tokens), prefix rows, loss rows
    private var fullCounts: [Int] = [], prefixCounts: [Int] = [], lossRows: [[Int]] = []
    /// per sequence: offset of its probabilities inside one block's `att` slice
    private var attOffsets: [Int] = []
    private var N = 0, attPerBlock = 0, M = 0
    private var ropeTable = RoPETable(positions: [], dims: 2, base: 1)
    private var hasTape = false, hasGradient = false

    /// [N, C] the residual stream (after the last block: the final RMSNorm's input)
    private var residual = Grow()
    // saved activations, one slice per block (see the file header)
    private var xs = Grow(), xMid = Grow(), rstd1 = Grow(), rstd2 = Grow(), qkv = Grow(), att = Grow(), gateUp = Grow()
    /// [M] the final RMSNorm's rstd at the loss rows, and its [M, C] output (scratch)
    private var rstdF = Grow(), hn = Grow()
    // scratch
    private var ln = Grow(), attOut = Grow(), hidden = Grow(), logits = Grow()
    // gradients
    private var dres = Grow(), dln = Grow(), dqkv = Grow(), dhidden = Grow(), dgateUp = Grow(), dhn = Grow()

    public init(model: Llama) { self.model = model }

    /// Runs the forward over `batch`, keeping what `backward` needs, and returns the logits
    /// at `lossRows[s]` (indices into sequence s's prefix + tokens) for every sequence.
    /// A sequence with no loss rows is not run (its gradient is zero).
    public func forward(batch: [LlamaSequence], lossRows: [[Int]]) throws -> [LlamaOutput] {
        let c = config
        let C = c.embeddingLength, L = c.blockCount, V = c.vocabSize, FF = c.feedForwardLength
        let NH = c.headCount, QKV = c.qkvWidth
        guard lossRows.count == batch.count else {
            throw ModelError.invalidInput("\(lossRows.count) loss-row lists for \(batch.count) sequences")
        }
        hasTape = false; hasGradient = false
        _ = model.weights.fp32Blocks()  // made once, before the clock starts
        let start = ContinuousClock.now
        var segs: [LlamaSegment] = [], full: [Int] = [], prefixes: [Int] = [], offsets: [Int] = []
        var n0 = 0, attTotal = 0, m0 = 0
        for (s, seq) in batch.enumerated() {
            guard seq.prefix.count % C == 0 else {
                throw ModelError.invalidInput("sequence \(s): prefix has \(seq.prefix.count) floats, not a multiple of C = \(C)")
            }
            if let bad = seq.tokens.firstIndex(where: { $0 < 0 || $0 >= V }) {
                throw ModelError.invalidInput("sequence \(s): token id \(seq.tokens[bad]) at index \(bad) is outside the vocabulary 0..<\(V)")
            }
            let P = seq.prefix.count / C, n = P + seq.tokens.count
            guard n <= c.contextLength else {
                throw ModelError.invalidInput("sequence \(s): \(n) positions exceed the context length \(c.contextLength)")
            }
            if let bad = lossRows[s].first(where: { $0 < 0 || $0 >= n }) {
                throw ModelError.invalidInput("sequence \(s): loss row \(bad) outside 0..<\(n)")
            }
            let used = (lossRows[s].max() ?? -1) + 1
            segs.append(LlamaSegment(start: n0, count: used, past: 0, cache: nil))
            full.append(n); prefixes.append(P); offsets.append(attTotal)
            n0 += used; attTotal += NH * used * used; m0 += lossRows[s].count
        }
        segments = segs; fullCounts = full; prefixCounts = prefixes; attOffsets = offsets
        self.lossRows = lossRows
        N = n0; attPerBlock = attTotal; M = m0
        let N = n0

        let x = residual.ensure(N * C), xIn = xs.ensure(L * N * C), xm = xMid.ensure(L * N * C)
        let r1 = rstd1.ensure(L * N), r2 = rstd2.ensure(L * N)
        let qkvAll = qkv.ensure(L * N * QKV), attAll = att.ensure(L * attTotal), guAll = gateUp.ensure(L * N * 2 * FF)
        let scratch = LlamaBlockScratch(ln: ln.ensure(N * C), attOut: attOut.ensure(N * C), hidden: hidden.ensure(N * FF),
                                        proj: nil, qkv: nil, att: nil, gateUp: nil)

        // x [N, C]: prefix rows, then token embeddings (only the rows that are run)
        for (s, seq) in batch.enumerated() {
            let seg = segs[s], P = prefixes[s]
            let row = x + seg.start * C
            let fromPrefix = min(P, seg.count)
            if fromPrefix > 0 { seq.prefix.withUnsafeBufferPointer { row.update(from: $0.baseAddress!, count: fromPrefix * C) } }
            for t in fromPrefix..<seg.count {
                model.weights.embeddingRow(seq.tokens[t - P], into: row + t * C)
            }
        }
        var positions: [Int] = []
        positions.reserveCapacity(N)
        for seg in segs { positions += 0..<seg.count }
        let rope = RoPETable(positions: positions, dims: c.ropeDimensionCount, base: c.ropeFreqBase)
        ropeTable = rope
        // all rows in one sgemm per linear layer
        let groups = N > 0 ? [LlamaRowGroup(start: 0, count: N, kernel: .sgemm)] : []
        for l in 0..<L {
            let tape = LlamaBlockTape(x: xIn + l * N * C, rstd1: r1 + l * N, qkv: qkvAll + l * N * QKV, att: attAll + l * attTotal,
                                      xMid: xm + l * N * C, rstd2: r2 + l * N, gateUp: guAll + l * N * 2 * FF)
            model.blockForward(l, x: x, scratch: scratch, segments: segs, groups: groups, rope: rope, tape: tape)
        }

        // final RMSNorm and the LM head at the loss rows only
        let M = m0
        let hnp = hn.ensure(M * C), rF = rstdF.ensure(M), lg = logits.ensure(M * V)
        let eps = c.rmsEps
        var i = 0
        for (s, rows) in lossRows.enumerated() {
            for r in rows {
                rmsnormForward(hnp + i * C, rstd: rF + i, x + (segs[s].start + r) * C, model.weights.outputNorm,
                               T: 1, C: C, eps: eps)
                i += 1
            }
        }
        let headStart = ContinuousClock.now
        if M > 0 { matmulForward(lg, hnp, model.weights.lmHeadFP32(), nil, T: M, C: C, OC: V) }
        timings.forwardBlocks = seconds(headStart - start)
        timings.forwardHead = seconds(ContinuousClock.now - headStart)
        hasTape = true
        var outputs: [LlamaOutput] = []
        i = 0
        for rows in lossRows {
            outputs.append(LlamaOutput(rows: rows, logits: Array(UnsafeBufferPointer(start: lg + i * V, count: rows.count * V)),
                                       vocabSize: V))
            i += rows.count
        }
        return outputs
    }

    /// Back-propagates d loss / d logits at the loss rows of the last `forward` (for sequence
    /// s: [lossRows[s].count, V], the same rows in the same order) and returns d loss / d
    /// prefix for every sequence ([P_s, C], empty when P_s = 0). `inputGradient(_:)` then
    /// also holds the gradients of the token-embedding rows.
    public func backward(dLogits: [[Float]]) throws -> [[Float]] {
        let fp32 = model.weights.fp32Blocks()
        let c = config
        let C = c.embeddingLength, L = c.blockCount, V = c.vocabSize, FF = c.feedForwardLength
        let NH = c.headCount, NKV = c.headCountKV, HS = c.headSize, QKV = c.qkvWidth
        guard hasTape else { throw ModelError.invalidInput("backward without a forward") }
        guard dLogits.count == lossRows.count else {
            throw ModelError.invalidInput("\(dLogits.count) logit gradients for \(lossRows.count) sequences")
        }
        for (s, d) in dLogits.enumerated() where d.count != lossRows[s].count * V {
            throw ModelError.invalidInput("sequence \(s): \(d.count) logit gradients, expected \(lossRows[s].count) rows × \(V)")
        }
        let N = self.N, M = self.M, segs = segments, offsets = attOffsets, attTotal = attPerBlock
        let x = xs.ensure(L * N * C), xm = xMid.ensure(L * N * C)
        let r1 = rstd1.ensure(L * N), r2 = rstd2.ensure(L * N)
        let qkvAll = qkv.ensure(L * N * QKV), attAll = att.ensure(L * attTotal), guAll = gateUp.ensure(L * N * 2 * FF)
        let dr = dres.ensure(N * C), dl = dln.ensure(N * C), dq = dqkv.ensure(N * QKV)
        let dh = dhidden.ensure(N * FF), dgu = dgateUp.ensure(N * 2 * FF)

        let start = ContinuousClock.now
        // the LM head and final RMSNorm: dhn[M, C] = dLogits[M, V] · lmHead[V, C]
        dr.update(repeating: 0, count: N * C)
        if M > 0 {
            let dlg = logits.ensure(M * V)  // the logits are no longer needed: reuse their buffer
            var i = 0
            for d in dLogits where !d.isEmpty {
                d.withUnsafeBufferPointer { (dlg + i * V).update(from: $0.baseAddress!, count: d.count) }
                i += d.count / V
            }
            let dhnp = dhn.ensure(M * C)
            matmulBackwardInput(dx: dhnp, dy: dlg, w: model.weights.lmHeadFP32(), T: M, C: C, OC: V)
            let xL = residual.ensure(N * C), rF = rstdF.ensure(M)
            i = 0
            for (s, rows) in lossRows.enumerated() {
                for r in rows {
                    let at = (segs[s].start + r) * C
                    rmsnormBackward(dx: dr + at, dweight: nil, dout: dhnp + i * C, x: xL + at, weight: model.weights.outputNorm,
                                    rstd: rF + i, T: 1, C: C)
                    i += 1
                }
            }
        }

        let blocksStart = ContinuousClock.now
        timings.backwardHead = seconds(blocksStart - start)
        for l in stride(from: L - 1, through: 0, by: -1) {
            let w = model.weights.blocks[l], f = fp32[l]
            let xIn = x + l * N * C, xMidL = xm + l * N * C
            let qkvL = qkvAll + l * N * QKV, attL = attAll + l * attTotal, gu = guAll + l * N * 2 * FF
            // feed-forward: x += Wdown · swiglu(WgateUp · rmsnorm(xMid))
            matmulBackwardInput(dx: dh, dy: dr, w: f.wDown, T: N, C: FF, OC: C)
            swigluBackwardRows(dgateUp: dgu, dout: dh, gateUp: gu, T: N, FF: FF)
            matmulBackwardInput(dx: dl, dy: dgu, w: f.wGateUp, T: N, C: C, OC: 2 * FF)
            rmsnormBackwardRows(dx: dr, dout: dl, x: xMidL, weight: w.ffnNorm, rstd: r2 + l * N, T: N, C: C)
            // attention: x += Wo · attention(rope(q), rope(k), v) of Wqkv · rmsnorm(xIn)
            matmulBackwardInput(dx: dl, dy: dr, w: f.wo, T: N, C: C, OC: C)  // dl = d attention output
            dq.update(repeating: 0, count: N * QKV)
            let dlS = UnsafeSendable(dl), dqS = UnsafeSendable(dq), attS = UnsafeSendable(attL), qkvS = UnsafeSendable(qkvL)
            parallelFor(segs.count * NKV) { task in
                let s = task / NKV, g = task % NKV, seg = segs[s]
                let q = qkvS.value + seg.start * QKV, dqs = dqS.value + seg.start * QKV
                attentionBackwardGroups(dq: dqs, dk: dqs + NH * HS, dv: dqs + (NH + NKV) * HS,
                                  dout: dlS.value + seg.start * C, outStride: C, att: attS.value + offsets[s],
                                  q: q, qStride: QKV, k: q + NH * HS, v: q + (NH + NKV) * HS, kvStride: QKV,
                                  T: seg.count, Tk: seg.count, NH: NH, NKV: NKV, HS: HS, groups: g..<g + 1)
            }
            ropeBackward(dq, table: ropeTable, T: N, NH: NH, HS: HS, stride: QKV)
            ropeBackward(dq + NH * HS, table: ropeTable, T: N, NH: NKV, HS: HS, stride: QKV)
            matmulBackwardInput(dx: dl, dy: dq, w: f.wqkv, T: N, C: C, OC: QKV)
            rmsnormBackwardRows(dx: dr, dout: dl, x: xIn, weight: w.attnNorm, rstd: r1 + l * N, T: N, C: C)
        }
        timings.backwardBlocks = seconds(ContinuousClock.now - blocksStart)
        hasGradient = true
        return segs.indices.map { s in rowsOfGradient(s, count: prefixCounts[s]) }
    }

    /// After `backward`: d loss / d input row for every row of sequence s (prefix rows, then
    /// token-embedding rows) [n_s, C]; rows after the last loss row are zero.
    public func inputGradient(_ s: Int) throws -> [Float] {
        guard hasGradient else { throw ModelError.invalidInput("inputGradient before backward") }
        guard segments.indices.contains(s) else { throw ModelError.invalidInput("sequence \(s) outside 0..<\(segments.count)") }
        return rowsOfGradient(s, count: fullCounts[s])
    }

    /// The first `count` rows of sequence s's input gradient, zero past the rows that ran.
    private func rowsOfGradient(_ s: Int, count: Int) -> [Float] {
        let C = config.embeddingLength
        let dr = dres.ensure(N * C), run = min(count, segments[s].count)
        var out = [Float](repeating: 0, count: count * C)
        guard run > 0 else { return out }
        out.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: dr + segments[s].start * C, count: run * C) }
        return out
    }
}

private func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}

/// A float buffer that grows to the largest size asked for and is then reused.
private struct Grow {
    private var buffer = FloatBuffer(count: 0)
    /// A pointer to at least `count` floats (contents unspecified after a growth).
    mutating func ensure(_ count: Int) -> UnsafeMutablePointer<Float> {
        if buffer.count < count { buffer = FloatBuffer(count: count) }
        return buffer.p
    }
}
