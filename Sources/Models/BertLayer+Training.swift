// One BERT layer with trainable weights, forward (keeping what the backward needs) and
// backward side by side, for fine-tuning the top of the encoder (RECIPE's query encoder).
// The forward is `BertLayer.forward` itself, run over the trainable weights with a tape
// (`BertLayerCache`); post-LayerNorm, exact-erf GELU, unpadded sequences stacked row-wise:
//
//   qkv = x Wqkvᵀ + bqkv,  ctx = attention(qkv),  h1 = LN1(x + ctx Woᵀ + bo)
//   u = h1 W1ᵀ + b1,       y = LN2(h1 + gelu(u) W2ᵀ + b2)
//
// The weights live in one flat block in `BertLayerWeights` order (a caller's buffer: the
// editor's parameters); `backward` accumulates into a block of the same layout and gives no
// input gradient (the layers below stay frozen).
import Kernels

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

extension BertLayer {
    /// The layer over a weight block in `BertLayerWeights` order (no packed panels: the
    /// weights change as they train).
    init(block base: UnsafeMutablePointer<Float>, shape: BertLayerWeights, heads: Int, eps: Float) {
        let v = shape.views(base)
        qkvWeight = UnsafePointer(v.qkvW); qkvBias = UnsafePointer(v.qkvB)
        attentionOutWeight = UnsafePointer(v.outW); attentionOutBias = UnsafePointer(v.outB)
        attentionNormWeight = UnsafePointer(v.norm1W); attentionNormBias = UnsafePointer(v.norm1B)
        intermediateWeight = UnsafePointer(v.interW); intermediateBias = UnsafePointer(v.interB)
        outputWeight = UnsafePointer(v.outputW); outputBias = UnsafePointer(v.outputB)
        outputNormWeight = UnsafePointer(v.norm2W); outputNormBias = UnsafePointer(v.norm2B)
        C = shape.C; FF = shape.FF; NH = heads; HS = shape.C / heads
        self.eps = eps
        panels = nil
    }
}

/// The tape of a training forward over N rows: what `BertTrainableLayer.backward` reads,
/// written by `BertLayer.forward` (the caches once it has run).
public final class BertLayerCache {
    /// [B + 1] the sequences' offsets
    let offsets: [Int]
    /// [N, C] the layer's input
    let x: FloatBuffer
    /// [N, 3C] query | key | value
    let qkv: FloatBuffer
    /// the attention probabilities
    var attention: BertAttentionCache?
    /// [N, C] attention output before Wo
    let context: FloatBuffer
    /// [N, C] x + ctx Woᵀ + bo, and its LayerNorm h1 with the norm's statistics
    let residual1: FloatBuffer, h1: FloatBuffer
    var norm1: LayerNormCache?
    /// [N, FF] u = h1 W1ᵀ + b1 and gelu(u)
    let u: FloatBuffer, g: FloatBuffer
    /// [N, C] h1 + gelu(u) W2ᵀ + b2, and its LayerNorm's statistics
    let residual2: FloatBuffer
    var norm2: LayerNormCache?

    init(offsets: [Int], C: Int, FF: Int) {
        let N = offsets.last ?? 0
        self.offsets = offsets
        x = FloatBuffer(count: N * C); qkv = FloatBuffer(count: N * 3 * C); context = FloatBuffer(count: N * C)
        residual1 = FloatBuffer(count: N * C); h1 = FloatBuffer(count: N * C)
        u = FloatBuffer(count: N * FF); g = FloatBuffer(count: N * FF)
        residual2 = FloatBuffer(count: N * C)
    }
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

    /// y [N, C] from x [N, C] (sequences at `offsets`), with the tape for `backward`.
    public func forward(_ weights: UnsafeMutablePointer<Float>, x: [Float], offsets: [Int]) -> (y: [Float], cache: BertLayerCache) {
        let layer = BertLayer(block: weights, shape: shape, heads: heads, eps: eps)
        let tape = BertLayerCache(offsets: offsets, C: C, FF: shape.FF)
        var y = x
        y.withUnsafeMutableBufferPointer { yp in
            if let base = yp.baseAddress { layer.forward(base, offsets: offsets, tape: tape) }
        }
        return (y, tape)
    }

    /// Accumulates the weight gradients of loss(y) into `grads` (same layout), given dy [N, C].
    public func backward(_ weights: UnsafeMutablePointer<Float>, grads: UnsafeMutablePointer<Float>, dy: [Float], cache k: BertLayerCache) {
        let v = shape.views(weights), d = shape.views(grads), C = self.C, FF = shape.FF, N = k.offsets.last ?? 0
        // y = LN2(r2), r2 = h1 + g W2ᵀ + b2
        var dr2 = [Float](repeating: 0, count: N * C)
        layerNormBackward(dx: &dr2, dweight: d.norm2W, dbias: d.norm2B, dout: dy, x: k.residual2.p, weight: v.norm2W, cache: k.norm2!,
                          T: N, C: C)
        var dg = [Float](repeating: 0, count: N * FF)
        matmulBackward(dx: &dg, dw: d.outputW, dbias: d.outputB, dy: dr2, x: k.g.p, w: v.outputW, T: N, C: FF, OC: C)
        var du = [Float](repeating: 0, count: N * FF)
        geluBackward(dx: &du, dout: dg, x: k.u.p, N: N * FF)
        var dh1 = dr2
        matmulBackward(dx: &dh1, dw: d.interW, dbias: d.interB, dy: du, x: k.h1.p, w: v.interW, T: N, C: C, OC: FF)
        // h1 = LN1(r1), r1 = x + ctx Woᵀ + bo
        var dr1 = [Float](repeating: 0, count: N * C)
        layerNormBackward(dx: &dr1, dweight: d.norm1W, dbias: d.norm1B, dout: dh1, x: k.residual1.p, weight: v.norm1W, cache: k.norm1!,
                          T: N, C: C)
        var dContext = [Float](repeating: 0, count: N * C)
        matmulBackward(dx: &dContext, dw: d.outW, dbias: d.outB, dy: dr1, x: k.context.p, w: v.outW, T: N, C: C, OC: C)
        var dqkv = [Float](repeating: 0, count: N * 3 * C)
        bertAttentionBackward(dqkv: &dqkv, dout: dContext, qkv: k.qkv.p, cache: k.attention!, NH: heads, HS: HS)
        matmulBackward(dx: nil, dw: d.qkvW, dbias: d.qkvB, dy: dqkv, x: k.x.p, w: v.qkvW, T: N, C: C, OC: 3 * C)
    }
}
