// One BERT transformer layer (post-LayerNorm):
//   x = LayerNorm(x + Wo · attention(Wq x, Wk x, Wv x))
//   x = LayerNorm(x + W2 · gelu(W1 x))
// over all sequences of a batch stacked row-wise, so every dense layer is one sgemm.
// The query, key and value weights are bound next to each other and used as one
// [3C, C] matrix. A short batch (a ~10-token query at ask time) multiplies instead with
// copies of the four dense weights packed into 64-channel panels (`matmulFewRowsPanels`),
// made once after loading (`pack`, 42 MB for MiniLM).
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

    /// Runs the layer in place on the stacked hidden states.
    /// - Parameters:
    ///   - x: [N, C] hidden states in, next layer's hidden states out
    ///   - offsets: [B + 1] start row of each sequence, then N
    func forward(_ x: UnsafeMutablePointer<Float>, offsets: [Int], scratch s: Scratch) {
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
        // Attention block: x = LN(x + Wo · attn + bo), the residual added by accumulating into x.
        dense(s.qkv, x, qkvWeight, p?.qkv, qkvBias, C: C, OC: 3 * C)
        bertAttentionForward(s.attention, s.qkv, offsets: offsets, NH: NH, HS: HS)
        dense(x, s.attention, attentionOutWeight, p?.attentionOut, attentionOutBias, C: C, OC: C, accumulate: true)
        layerNormForward(x, x, attentionNormWeight, attentionNormBias, T: N, C: C, eps: eps)
        // Feed-forward block: x = LN(x + W2 · gelu(W1 x + b1) + b2).
        dense(s.hidden, x, intermediateWeight, p?.intermediate, intermediateBias, C: C, OC: FF)
        geluForward(s.hidden, s.hidden, N: N * FF)
        dense(x, s.hidden, outputWeight, p?.output, outputBias, C: FF, OC: C, accumulate: true)
        layerNormForward(x, x, outputNormWeight, outputNormBias, T: N, C: C, eps: eps)
    }
}
