// One BERT transformer layer (post-LayerNorm):
//   x = LayerNorm(x + Wo · attention(Wq x, Wk x, Wv x))
//   x = LayerNorm(x + W2 · gelu(W1 x))
// over all sequences of a batch stacked row-wise, so every dense layer is one sgemm.
// The query, key and value weights are bound next to each other and used as one
// [3C, C] matrix. A short batch (a ~10-token query at ask time) multiplies instead with
// copies of the four dense weights packed into 64-channel panels (`matmulFewRowsPanels`),
// made once after loading (`pack`, 42 MB for MiniLM).
//
// `forward` is the layer's one forward: the model's inference, and, over a trainable copy
// of the weights (`BertTrainableLayer`, BertLayer+Training.swift), the training forward,
// which hands it a tape (`BertLayerCache`) to keep what the backward reads.
import Kernels

public struct BertLayer: @unchecked Sendable {  // views into immutable BertParameters
    /// [3C, C] attention.self.{query,key,value}.weight stacked
    public let qkvWeight: UnsafePointer<Float>
    /// [3C] attention.self.{query,key,value}.bias stacked
    public let qkvBias: UnsafePointer<Float>
    /// [C, C] attention.output.dense.weight
    public let attentionOutWeight: UnsafePointer<Float>
    /// [C] attention.output.dense.bias
    public let attentionOutBias: UnsafePointer<Float>
    /// [C] attention.output.LayerNorm.weight / .bias
    public let attentionNormWeight: UnsafePointer<Float>
    public let attentionNormBias: UnsafePointer<Float>
    /// [FF, C] intermediate.dense.weight
    public let intermediateWeight: UnsafePointer<Float>
    /// [FF] intermediate.dense.bias
    public let intermediateBias: UnsafePointer<Float>
    /// [C, FF] output.dense.weight
    public let outputWeight: UnsafePointer<Float>
    /// [C] output.dense.bias
    public let outputBias: UnsafePointer<Float>
    /// [C] output.LayerNorm.weight / .bias
    public let outputNormWeight: UnsafePointer<Float>
    public let outputNormBias: UnsafePointer<Float>
    let C: Int, FF: Int, NH: Int, HS: Int
    let eps: Float
    /// The dense weights packed by `packPanels` (qkv, attention output, intermediate, output),
    /// set by `BertModel` after loading; nil when a width is not a multiple of 64.
    var panels: (qkv: UnsafePointer<Float>, attentionOut: UnsafePointer<Float>,
                 intermediate: UnsafePointer<Float>, output: UnsafePointer<Float>)?

    init(_ b: inout BertTensorBinder, _ config: BertConfig, layer l: Int) throws {
        let C = config.hiddenSize, FF = config.intermediateSize
        let p = "encoder.layer.\(l)."
        qkvWeight = try b.bind(p + "attention.self.query.weight", [C, C])
        _ = try b.bind(p + "attention.self.key.weight", [C, C])
        _ = try b.bind(p + "attention.self.value.weight", [C, C])
        qkvBias = try b.bind(p + "attention.self.query.bias", [C])
        _ = try b.bind(p + "attention.self.key.bias", [C])
        _ = try b.bind(p + "attention.self.value.bias", [C])
        attentionOutWeight = try b.bind(p + "attention.output.dense.weight", [C, C])
        attentionOutBias = try b.bind(p + "attention.output.dense.bias", [C])
        attentionNormWeight = try b.bind(p + "attention.output.LayerNorm.weight", [C])
        attentionNormBias = try b.bind(p + "attention.output.LayerNorm.bias", [C])
        intermediateWeight = try b.bind(p + "intermediate.dense.weight", [FF, C])
        intermediateBias = try b.bind(p + "intermediate.dense.bias", [FF])
        outputWeight = try b.bind(p + "output.dense.weight", [C, FF])
        outputBias = try b.bind(p + "output.dense.bias", [C])
        outputNormWeight = try b.bind(p + "output.LayerNorm.weight", [C])
        outputNormBias = try b.bind(p + "output.LayerNorm.bias", [C])
        self.C = C; self.FF = FF
        NH = config.numAttentionHeads; HS = config.headSize
        eps = config.layerNormEps
    }

    /// Floats of the packed copies (0 when a width is not a multiple of 64).
    var panelCount: Int { C % 64 == 0 && FF % 64 == 0 ? 4 * C * C + 2 * FF * C : 0 }

    /// Packs the loaded dense weights into `storage` ([panelCount]) and points `panels` at them.
    mutating func pack(into storage: UnsafeMutablePointer<Float>) {
        guard panelCount > 0 else { return }
        let qkv = storage, out = qkv + 3 * C * C, inter = out + C * C, output = inter + FF * C
        packPanels(qkvWeight, OC: 3 * C, C: C, into: qkv)
        packPanels(attentionOutWeight, OC: C, C: C, into: out)
        packPanels(intermediateWeight, OC: FF, C: C, into: inter)
        packPanels(outputWeight, OC: C, C: FF, into: output)
        panels = (UnsafePointer(qkv), UnsafePointer(out), UnsafePointer(inter), UnsafePointer(output))
    }

    static func parameterCount(_ config: BertConfig) -> Int {
        let C = config.hiddenSize, FF = config.intermediateSize
        return 4 * C * C + 4 * C + 4 * C + 2 * FF * C + FF + C
    }

    /// Scratch space for one forward over N rows.
    struct Scratch {
        /// [N, 3C] query | key | value
        let qkv: UnsafeMutablePointer<Float>
        /// [N, C] attention output before the output projection
        let attention: UnsafeMutablePointer<Float>
        /// [N, FF] feed-forward hidden layer
        let hidden: UnsafeMutablePointer<Float>
    }

    /// Runs the layer in place on the stacked hidden states. With a `tape` (training) every
    /// intermediate goes to the tape's buffers, which the backward reads; without one they go
    /// to `scratch`, and the residuals and norms are computed in place on x.
    /// - Parameters:
    ///   - x: [N, C] hidden states in, next layer's hidden states out
    ///   - offsets: [B + 1] start row of each sequence, then N
    ///   - scratch: buffers for one forward over N rows (nil with a tape)
    ///   - tape: the training forward's saved activations, sized for N rows
    func forward(_ x: UnsafeMutablePointer<Float>, offsets: [Int], scratch: Scratch? = nil, tape: BertLayerCache? = nil) {
        precondition((scratch == nil) != (tape == nil), "BertLayer.forward: give scratch (inference) or a tape (training)")
        let N = offsets.last ?? 0
        let p = (1...matmulFewRowsLimit).contains(N) ? panels : nil
        func dense(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ packed: UnsafePointer<Float>?,
                   _ b: UnsafePointer<Float>, C: Int, OC: Int, accumulate: Bool = false) {
            if let packed {
                matmulFewRowsPanels(y, x, packed, b, T: N, C: C, OC: OC, accumulate: accumulate)
            } else {
                matmulForward(y, x, w, b, T: N, C: C, OC: OC, accumulate: accumulate)
            }
        }
        // where each intermediate goes: inference overwrites scratch and x, training keeps each
        let qkv = tape?.qkv.p ?? scratch!.qkv, context = tape?.context.p ?? scratch!.attention
        let u = tape?.u.p ?? scratch!.hidden, g = tape?.g.p ?? scratch!.hidden
        let r1 = tape?.residual1.p ?? x, h1 = tape?.h1.p ?? x, r2 = tape?.residual2.p ?? x
        tape?.x.p.update(from: x, count: N * C)
        // Attention block: h1 = LN(x + Wo · attn + bo), the residual added by accumulating.
        dense(qkv, x, qkvWeight, p?.qkv, qkvBias, C: C, OC: 3 * C)
        let attention = bertAttentionForward(context, qkv, offsets: offsets, NH: NH, HS: HS, cache: tape != nil)
        if r1 != x { r1.update(from: x, count: N * C) }
        dense(r1, context, attentionOutWeight, p?.attentionOut, attentionOutBias, C: C, OC: C, accumulate: true)
        let norm1 = layerNormForward(h1, r1, attentionNormWeight, attentionNormBias, T: N, C: C, eps: eps, cache: tape != nil)
        // Feed-forward block: x = LN(h1 + W2 · gelu(W1 h1 + b1) + b2).
        dense(u, h1, intermediateWeight, p?.intermediate, intermediateBias, C: C, OC: FF)
        geluForward(g, u, N: N * FF)
        if r2 != h1 { r2.update(from: h1, count: N * C) }
        dense(r2, g, outputWeight, p?.output, outputBias, C: FF, OC: C, accumulate: true)
        let norm2 = layerNormForward(x, r2, outputNormWeight, outputNormBias, T: N, C: C, eps: eps, cache: tape != nil)
        if let tape { (tape.attention, tape.norm1, tape.norm2) = (attention, norm1, norm2) }
    }
}
