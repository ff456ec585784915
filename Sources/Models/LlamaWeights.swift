// Binding a Llama GGUF's tensors (the second loading phase; the GGUF reader did the first):
// every tensor the architecture needs must be present with the shape the config implies,
// in a type we can run. `output.weight` is optional: without it the LM head is tied to
// `token_embd.weight`.
//
// Weights are kept two ways:
//  * fp32 copies for the batched cblas_sgemm prefill (and a later backward): Q|K|V fused
//    into one [(NH+2·NKV)·HS, C] matrix and gate|up into one [2·FF, C] so each block runs
//    4 big matmuls;
//  * `QuantMatrix`es for the memory-bound decode matvec: Q4_0/Q4_1/Q8_0 repacked from the
//    mmapped bytes into the same-size SIMD layout of QuantPacking.swift, F16/BF16/F32 viewed
//    in place (a type without a decode kernel, Q5_x, is read through its fp32 copy).
import Kernels
import WeightFormats

/// One transformer block's weights. Shapes are row-major [rows, cols] with y = W·x.
public struct LlamaBlockWeights: @unchecked Sendable {
    /// [C] RMSNorm scale before attention
    public let attnNorm: UnsafeMutablePointer<Float>
    /// [(NH + 2·NKV)·HS, C] rows of attn_q, then attn_k, then attn_v
    public let wqkv: UnsafeMutablePointer<Float>
    /// [C, NH·HS] attn_output
    public let wo: UnsafeMutablePointer<Float>
    /// [C] RMSNorm scale before the feed-forward
    public let ffnNorm: UnsafeMutablePointer<Float>
    /// [2·FF, C] rows of ffn_gate, then ffn_up
    public let wGateUp: UnsafeMutablePointer<Float>
    /// [C, FF] ffn_down
    public let wDown: UnsafeMutablePointer<Float>
    /// The same matrices as stored in the file, for decode.
    public let q, k, v, o, gate, up, down: QuantMatrix
}

public final class LlamaWeights: @unchecked Sendable {
    public let config: LlamaConfig
    /// Keeps the mapping that the `QuantMatrix` views point into alive.
    public let gguf: GGUFFile
    public let blocks: [LlamaBlockWeights]
    /// [V, C] token embeddings (fp32)
    public let tokenEmbedding: UnsafeMutablePointer<Float>
    /// [C] final RMSNorm scale
    public let outputNorm: UnsafeMutablePointer<Float>
    /// [V, C] LM head (fp32); the same memory as `tokenEmbedding` when tied
    public let lmHead: UnsafeMutablePointer<Float>
    /// [V, C] LM head as stored in the file, for decode
    public let lmHeadQuant: QuantMatrix
    /// True when the file has no `output.weight` and the LM head is `token_embd.weight`.
    public let tiedOutput: Bool
    private let storage: [FloatBuffer]

    public init(gguf: GGUFFile, config: LlamaConfig) throws {
        self.config = config
        self.gguf = gguf
        let file = gguf.path
        let C = config.embeddingLength, V = config.vocabSize, FF = config.feedForwardLength
        let HS = config.headSize, NH = config.headCount, NKV = config.headCountKV
        var storage: [FloatBuffer] = []

        /// The tensor `name` with GGUF shape `ne` (ne[0] = row length), in a type we can read.
        func bind(_ name: String, _ ne: [Int]) throws -> GGUFTensorInfo {
            guard let t = gguf.tensor(name) else { throw ModelError.missingTensor(file: file, tensor: name) }
            guard t.shape == ne else {
                throw ModelError.shapeMismatch(file: file, tensor: name, expected: ne, actual: t.shape)
            }
            guard t.type.isSupported else {
                throw ModelError.unsupported(file: file, what: "tensor '\(name)' of type \(t.type.name)",
                                             hint: "supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (requantize with llama-quantize)")
            }
            return t
        }
        /// Dequantizes `t` into `dst` (rowCount · rowLength floats).
        func load(_ t: GGUFTensorInfo, into dst: UnsafeMutablePointer<Float>) throws {
            do { try gguf.dequantize(t, into: UnsafeMutableBufferPointer(start: dst, count: t.elementCount)) } catch {
                throw ModelError.unsupported(file: file, what: "tensor '\(t.name)'", hint: "\(error)")
            }
        }
        func vector(_ name: String, _ n: Int) throws -> UnsafeMutablePointer<Float> {
            let t = try bind(name, [n])
            let b = FloatBuffer(count: n)
            storage.append(b)
            try load(t, into: b.p)
            return b.p
        }
        /// The file's bytes as a QuantMatrix, or the fp32 copy when no decode kernel reads the type.
        func quantView(_ t: GGUFTensorInfo, fp32: UnsafeMutablePointer<Float>) -> QuantMatrix {
            let rows = t.rowCount, cols = t.rowLength
            let format: QuantFormat?
            switch t.type {
            case .f32: format = .f32
            case .f16: format = .f16
            case .bf16: format = .bf16
            case .q4_0: format = .q4_0
            case .q4_1: format = .q4_1
            case .q8_0: format = .q8_0
            default: format = nil
            }
            if let format, cols % format.blockSize == 0 {
                // Q4_0/Q4_1/Q8_0 are repacked into the SIMD-friendly decode layout
                // (QuantPacking.swift); F16/BF16/F32 are read in place from the mapping.
                return QuantMatrix(format: format, rows: rows, cols: cols, data: gguf.data(t).baseAddress!).packedForDecode()
            }
            return QuantMatrix(format: .f32, rows: rows, cols: cols, data: UnsafeRawPointer(fp32))
        }

        let embT = try bind("token_embd.weight", [C, V])
        let emb = FloatBuffer(count: V * C)
        storage.append(emb)
        try load(embT, into: emb.p)
        tokenEmbedding = emb.p
        outputNorm = try vector("output_norm.weight", C)
        if gguf.tensor("output.weight") != nil {
            let t = try bind("output.weight", [C, V])
            let b = FloatBuffer(count: V * C)
            storage.append(b)
            try load(t, into: b.p)
            lmHead = b.p
            lmHeadQuant = quantView(t, fp32: b.p)
            tiedOutput = false
        } else {
            lmHead = emb.p
            lmHeadQuant = quantView(embT, fp32: emb.p)
            tiedOutput = true
        }

        var blocks: [LlamaBlockWeights] = []
        for l in 0..<config.blockCount {
            let p = "blk.\(l)."
            let qT = try bind(p + "attn_q.weight", [C, NH * HS])
            let kT = try bind(p + "attn_k.weight", [C, NKV * HS])
            let vT = try bind(p + "attn_v.weight", [C, NKV * HS])
            let oT = try bind(p + "attn_output.weight", [NH * HS, C])
            let gT = try bind(p + "ffn_gate.weight", [C, FF])
            let uT = try bind(p + "ffn_up.weight", [C, FF])
            let dT = try bind(p + "ffn_down.weight", [FF, C])
            let attnNorm = try vector(p + "attn_norm.weight", C)
            let ffnNorm = try vector(p + "ffn_norm.weight", C)
            let qkv = FloatBuffer(count: config.qkvWidth * C)
            let o = FloatBuffer(count: C * NH * HS)
            let gu = FloatBuffer(count: 2 * FF * C)
            let d = FloatBuffer(count: C * FF)
            storage += [qkv, o, gu, d]
            try load(qT, into: qkv.p)
            try load(kT, into: qkv.p + NH * HS * C)
            try load(vT, into: qkv.p + (NH + NKV) * HS * C)
            try load(oT, into: o.p)
            try load(gT, into: gu.p)
            try load(uT, into: gu.p + FF * C)
            try load(dT, into: d.p)
            blocks.append(LlamaBlockWeights(
                attnNorm: attnNorm, wqkv: qkv.p, wo: o.p, ffnNorm: ffnNorm, wGateUp: gu.p, wDown: d.p,
                q: quantView(qT, fp32: qkv.p), k: quantView(kT, fp32: qkv.p + NH * HS * C),
                v: quantView(vT, fp32: qkv.p + (NH + NKV) * HS * C), o: quantView(oT, fp32: o.p),
                gate: quantView(gT, fp32: gu.p), up: quantView(uT, fp32: gu.p + FF * C), down: quantView(dT, fp32: d.p)))
        }
        self.blocks = blocks
        self.storage = storage
    }

    /// Bytes of weights one decode step reads (the quantized views plus the norms).
    public var decodeBytesPerToken: Int {
        var n = lmHeadQuant.rows * lmHeadQuant.rowBytes
        for b in blocks {
            for m in [b.q, b.k, b.v, b.o, b.gate, b.up, b.down] { n += m.rows * m.rowBytes }
        }
        return n + (2 * config.blockCount + 1) * config.embeddingLength * 4
    }
}
