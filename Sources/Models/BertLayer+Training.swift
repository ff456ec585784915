// One BERT layer with trainable weights, forward (keeping what the backward needs) and
// backward side by side, for fine-tuning the top of the encoder (RECIPE's query encoder).
// The same math as `BertLayer.forward` (post-LayerNorm, exact-erf GELU, unpadded sequences
// stacked row-wise):
//
//   qkv = x Wqkvᵀ + bqkv,  ctx = attention(qkv),  h1 = LN1(x + ctx Woᵀ + bo)
//   u = h1 W1ᵀ + b1,       y = LN2(h1 + gelu(u) W2ᵀ + b2)
//
// The weights live in one flat block in `BertLayerWeights` order (a caller's buffer: the
// editor's parameters); `backward` accumulates into a block of the same layout and gives no
// input gradient (the layers below stay frozen).
import Foundation
import Kernels
import Parallelism

/// A flat block of one layer's weights: offsets of each tensor for hidden width C and
/// feed-forward width FF.
public struct BertLayerWeights: Sendable {
    public let C: Int, FF: Int
    public init(C: Int, FF: Int) { self.C = C; self.FF = FF }

    /// [3C, C], [3C], [C, C], [C], [C], [C], [FF, C], [FF], [C, FF], [C], [C], [C]
    public var sizes: [Int] { [3 * C * C, 3 * C, C * C, C, C, C, FF * C, FF, C * FF, C, C, C] }
    /// Floats in the block.
    public var count: Int { sizes.reduce(0, +) }
    public var offsets: [Int] { sizes.indices.map { sizes[..<$0].reduce(0, +) } }

    struct Views {
        let qkvW, qkvB, outW, outB, norm1W, norm1B, interW, interB, outputW, outputB, norm2W, norm2B: UnsafeMutablePointer<Float>
    }

    func views(_ base: UnsafeMutablePointer<Float>) -> Views {
        let o = offsets.map { base + $0 }
        return Views(qkvW: o[0], qkvB: o[1], outW: o[2], outB: o[3], norm1W: o[4], norm1B: o[5],
                     interW: o[6], interB: o[7], outputW: o[8], outputB: o[9], norm2W: o[10], norm2B: o[11])
    }
}

extension BertLayer {
    /// The layer's loaded weights copied into a `BertLayerWeights` block.
    public func copyWeights(into base: UnsafeMutablePointer<Float>) {
        let v = BertLayerWeights(C: C, FF: FF).views(base)
        v.qkvW.update(from: qkvWeight, count: 3 * C * C)
        v.qkvB.update(from: qkvBias, count: 3 * C)
        v.outW.update(from: attentionOutWeight, count: C * C)
        v.outB.update(from: attentionOutBias, count: C)
        v.norm1W.update(from: attentionNormWeight, count: C)
        v.norm1B.update(from: attentionNormBias, count: C)
        v.interW.update(from: intermediateWeight, count: FF * C)
        v.interB.update(from: intermediateBias, count: FF)
        v.outputW.update(from: outputWeight, count: C * FF)
        v.outputB.update(from: outputBias, count: C)
        v.norm2W.update(from: outputNormWeight, count: C)
        v.norm2B.update(from: outputNormBias, count: C)
    }
}

/// What `BertTrainableLayer.backward` needs from the forward.
public struct BertLayerCache {
    let x: [Float], qkv: [Float], probabilities: [Float], context: [Float]
    let residual1: [Float], norm1: LayerNormCache, h1: [Float]
    let u: [Float], g: [Float], residual2: [Float], norm2: LayerNormCache
    let offsets: [Int]
}

/// One layer's math on a weight block.
public struct BertTrainableLayer: Sendable {
    public let shape: BertLayerWeights
    public let heads: Int
    public let eps: Float

    public init(config: BertConfig) {
        shape = BertLayerWeights(C: config.hiddenSize, FF: config.intermediateSize)
        heads = config.numAttentionHeads
        eps = config.layerNormEps
    }

    var C: Int { shape.C }
    var HS: Int { C / heads }

    /// y [N, C] from x [N, C] (sequences at `offsets`), with the cache for `backward`.
    public func forward(_ weights: UnsafeMutablePointer<Float>, x: [Float], offsets: [Int]) -> (y: [Float], cache: BertLayerCache) {
        let v = shape.views(weights), C = self.C, FF = shape.FF, N = offsets.last ?? 0
        var qkv = [Float](repeating: 0, count: N * 3 * C)
        matmulForward(&qkv, x, v.qkvW, v.qkvB, T: N, C: C, OC: 3 * C)
        let (context, probabilities) = attention(qkv, offsets: offsets)
        var residual1 = x
        matmulForward(&residual1, context, v.outW, v.outB, T: N, C: C, OC: C, accumulate: true)
        var h1 = [Float](repeating: 0, count: N * C)
        let norm1 = layerNormForward(&h1, residual1, v.norm1W, v.norm1B, T: N, C: C, eps: eps, cache: true)
        var u = [Float](repeating: 0, count: N * FF)
        matmulForward(&u, h1, v.interW, v.interB, T: N, C: C, OC: FF)
        var g = [Float](repeating: 0, count: N * FF)
        geluForward(&g, u, N: N * FF)
        var residual2 = h1
        matmulForward(&residual2, g, v.outputW, v.outputB, T: N, C: FF, OC: C, accumulate: true)
        var y = [Float](repeating: 0, count: N * C)
        let norm2 = layerNormForward(&y, residual2, v.norm2W, v.norm2B, T: N, C: C, eps: eps, cache: true)
        return (y, BertLayerCache(x: x, qkv: qkv, probabilities: probabilities, context: context, residual1: residual1, norm1: norm1,
                                  h1: h1, u: u, g: g, residual2: residual2, norm2: norm2, offsets: offsets))
    }

    /// Accumulates the weight gradients of loss(y) into `grads` (same layout), given dy [N, C].
    public func backward(_ weights: UnsafeMutablePointer<Float>, grads: UnsafeMutablePointer<Float>, dy: [Float], cache k: BertLayerCache) {
        let v = shape.views(weights), d = shape.views(grads), C = self.C, FF = shape.FF, N = k.offsets.last ?? 0
        // y = LN2(r2), r2 = h1 + g W2ᵀ + b2
        var dr2 = [Float](repeating: 0, count: N * C)
        layerNormBackward(dx: &dr2, dweight: d.norm2W, dbias: d.norm2B, dout: dy, x: k.residual2, weight: v.norm2W, cache: k.norm2, T: N, C: C)
        var dg = [Float](repeating: 0, count: N * FF)
        matmulBackward(dx: &dg, dw: d.outputW, dbias: d.outputB, dy: dr2, x: k.g, w: v.outputW, T: N, C: FF, OC: C)
        var du = [Float](repeating: 0, count: N * FF)
        geluBackward(dx: &du, dout: dg, x: k.u, N: N * FF)
        var dh1 = dr2
        matmulBackward(dx: &dh1, dw: d.interW, dbias: d.interB, dy: du, x: k.h1, w: v.interW, T: N, C: C, OC: FF)
        // h1 = LN1(r1), r1 = x + ctx Woᵀ + bo
        var dr1 = [Float](repeating: 0, count: N * C)
        layerNormBackward(dx: &dr1, dweight: d.norm1W, dbias: d.norm1B, dout: dh1, x: k.residual1, weight: v.norm1W, cache: k.norm1, T: N, C: C)
        var dContext = [Float](repeating: 0, count: N * C)
        matmulBackward(dx: &dContext, dw: d.outW, dbias: d.outB, dy: dr1, x: k.context, w: v.outW, T: N, C: C, OC: C)
        let dqkv = attentionBackward(dContext, qkv: k.qkv, probabilities: k.probabilities, offsets: k.offsets)
        matmulBackward(dx: nil, dw: d.qkvW, dbias: d.qkvB, dy: dqkv, x: k.x, w: v.qkvW, T: N, C: C, OC: 3 * C)
    }

    /// Probabilities are kept per (sequence, head) as T×T blocks, one after the other.
    func probabilityOffsets(_ offsets: [Int]) -> [Int] {
        var out = [0]
        for b in 0..<(offsets.count - 1) {
            let T = offsets[b + 1] - offsets[b]
            out.append(out.last! + heads * T * T)
        }
        return out
    }

    /// The context [N, C] and the attention probabilities, in parallel over (sequence, head)
    /// pairs, which write disjoint blocks.
    func attention(_ qkv: [Float], offsets: [Int]) -> (context: [Float], probabilities: [Float]) {
        let C = self.C, C3 = 3 * C, HS = self.HS, NH = heads, scale = 1 / Float(HS).squareRoot()
        let po = probabilityOffsets(offsets), B = offsets.count - 1
        var context = [Float](repeating: 0, count: (offsets.last ?? 0) * C)
        var probabilities = [Float](repeating: 0, count: po.last!)
        qkv.withUnsafeBufferPointer { qb in context.withUnsafeMutableBufferPointer { cb in probabilities.withUnsafeMutableBufferPointer { pb in
            let src = UnsafeSendable(qb.baseAddress!), ctx = UnsafeSendable(cb.baseAddress!), prob = UnsafeSendable(pb.baseAddress!)
            parallelRanges(B * NH, minimum: 8) { pairs in
                for pair in pairs {
                    let b = pair / NH, h = pair % NH, start = offsets[b], T = offsets[b + 1] - start
                    let q0 = src.value + start * C3 + h * HS, k0 = q0 + C, v0 = q0 + 2 * C
                    for i in 0..<T {
                        let p = prob.value + po[b] + (h * T + i) * T
                        var mx = -Float.infinity
                        for j in 0..<T {
                            p[j] = dot(q0 + i * C3, k0 + j * C3, HS) * scale
                            mx = max(mx, p[j])
                        }
                        var sum: Float = 0
                        for j in 0..<T { p[j] = expf(p[j] - mx); sum += p[j] }
                        let inv = 1 / sum, y = ctx.value + (start + i) * C + h * HS
                        for j in 0..<T {
                            p[j] *= inv
                            let v = v0 + j * C3
                            for e in 0..<HS { y[e] += p[j] * v[e] }
                        }
                    }
                }
            }
        } } }
        return (context, probabilities)
    }

    /// d qkv [N, 3C] from d context: dP_ij = dctx_i·v_j, dv_j = Σ_i P_ij dctx_i,
    /// dS_ij = P_ij (dP_ij − Σ_k P_ik dP_ik), dq_i = Σ_j dS_ij k_j / √HS, dk_j = Σ_i dS_ij q_i / √HS;
    /// in parallel over (sequence, head) pairs, whose q, k and v columns are their own.
    func attentionBackward(_ dContext: [Float], qkv: [Float], probabilities: [Float], offsets: [Int]) -> [Float] {
        let C = self.C, C3 = 3 * C, HS = self.HS, NH = heads, scale = 1 / Float(HS).squareRoot()
        let po = probabilityOffsets(offsets), B = offsets.count - 1
        let maxT = (0..<B).map { offsets[$0 + 1] - offsets[$0] }.max() ?? 0
        var dqkv = [Float](repeating: 0, count: (offsets.last ?? 0) * C3)
        qkv.withUnsafeBufferPointer { qb in dContext.withUnsafeBufferPointer { db in probabilities.withUnsafeBufferPointer { pb in
            dqkv.withUnsafeMutableBufferPointer { gb in
                let src = UnsafeSendable(qb.baseAddress!), dctx = UnsafeSendable(db.baseAddress!)
                let prob = UnsafeSendable(pb.baseAddress!), grad = UnsafeSendable(gb.baseAddress!)
                parallelRanges(B * NH, minimum: 8) { pairs in
                    var dP = [Float](repeating: 0, count: maxT)
                    for pair in pairs {
                        let b = pair / NH, h = pair % NH, start = offsets[b], T = offsets[b + 1] - start
                        let q0 = src.value + start * C3 + h * HS, k0 = q0 + C, v0 = q0 + 2 * C
                        let dq0 = grad.value + start * C3 + h * HS, dk0 = dq0 + C, dv0 = dq0 + 2 * C
                        for i in 0..<T {
                            let p = prob.value + po[b] + (h * T + i) * T, dy = dctx.value + (start + i) * C + h * HS
                            var weighted: Float = 0
                            for j in 0..<T {
                                dP[j] = dot(dy, v0 + j * C3, HS)
                                weighted += p[j] * dP[j]
                                let dv = dv0 + j * C3
                                for e in 0..<HS { dv[e] += p[j] * dy[e] }
                            }
                            let q = q0 + i * C3, dq = dq0 + i * C3
                            for j in 0..<T {
                                let dS = p[j] * (dP[j] - weighted) * scale
                                let k = k0 + j * C3, dk = dk0 + j * C3
                                for e in 0..<HS {
                                    dq[e] += dS * k[e]
                                    dk[e] += dS * q[e]
                                }
                            }
                        }
                    }
                }
            }
        } } }
        return dqkv
    }
}
