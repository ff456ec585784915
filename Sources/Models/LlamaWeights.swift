// Binding a Llama GGUF's tensors (the second loading phase; the GGUF reader did the first):
// every tensor the architecture needs must be present with the shape the config implies,
// in a type we can run. `output.weight` is optional: without it the LM head is tied to
// `token_embd.weight`.
//
// Weights are kept two ways:
//  * `QuantMatrix`es for decode, short prefills and embedding lookups: Q4_0/Q4_1/Q8_0
//    repacked from the mmapped bytes into the same-size SIMD layout of QuantPacking.swift,
//    F16/BF16/F32 viewed in place in the mapping (a type without a kernel, Q5_x, is read
//    through an fp32 copy). This is all a load does, so loading is fast.
//  * fp32 copies for the batched cblas_sgemm prefill (and a backward): Q|K|V fused into one
//    [(NH+2·NKV)·HS, C] matrix and gate|up into one [2·FF, C]. They are made on first use
//    (`fp32Blocks()`, `lmHeadFP32()`), so a process that only decodes never pays for them.
import Foundation
import Kernels
import WeightFormats

/// One transformer block's weights as the file stores them (y = W·x, W is [rows, cols]).
public struct LlamaBlockWeights: @unchecked Sendable {
    /// [C] RMSNorm scale before attention
    public let attnNorm: UnsafeMutablePointer<Float>
    /// [C] RMSNorm scale before the feed-forward
    public let ffnNorm: UnsafeMutablePointer<Float>
    /// q [NH·HS, C], k and v [NKV·HS, C], o [C, NH·HS], gate and up [FF, C], down [C, FF]
    public let q, k, v, o, gate, up, down: QuantMatrix
}

/// One block's matrices in fp32, fused for the prefill sgemms.
public struct LlamaBlockFP32: @unchecked Sendable {
    /// [(NH + 2·NKV)·HS, C] rows of attn_q, then attn_k, then attn_v
    public let wqkv: UnsafeMutablePointer<Float>
    /// [C, NH·HS] attn_output
    public let wo: UnsafeMutablePointer<Float>
    /// [2·FF, C] rows of ffn_gate, then ffn_up
    public let wGateUp: UnsafeMutablePointer<Float>
    /// [C, FF] ffn_down
    public let wDown: UnsafeMutablePointer<Float>
}

public final class LlamaWeights: @unchecked Sendable {
    public let config: LlamaConfig
    /// Keeps the mapping that the `QuantMatrix` views point into alive.
    public let gguf: GGUFFile
    public let blocks: [LlamaBlockWeights]
    /// [V, C] token embeddings
    public let tokenEmbedding: QuantMatrix
    /// [C] final RMSNorm scale
    public let outputNorm: UnsafeMutablePointer<Float>
    /// [V, C] LM head (the same matrix as `tokenEmbedding` when tied)
    public let lmHeadQuant: QuantMatrix
    /// True when the file has no `output.weight` and the LM head is `token_embd.weight`.
    public let tiedOutput: Bool

    private var storage: [FloatBuffer] = []
    private let blockTensors: [[GGUFTensorInfo]]  // per block: q, k, v, o, gate, up, down
    private let lmHeadTensor: GGUFTensorInfo
    private let lock = NSLock()
    private var fp32Cache: [LlamaBlockFP32]?
    private var lmHeadCache: UnsafeMutablePointer<Float>?

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
        func vector(_ name: String, _ n: Int) throws -> UnsafeMutablePointer<Float> {
            let t = try bind(name, [n])
            let b = FloatBuffer(count: n)
            storage.append(b)
            try Self.load(gguf, t, into: b.p)
            return b.p
        }
        /// The matrix for decode: packed/viewed from the file's bytes, or an fp32 copy when no
        /// kernel reads the type.
        func quant(_ t: GGUFTensorInfo) throws -> QuantMatrix {
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
                return QuantMatrix(format: format, rows: rows, cols: cols, data: gguf.data(t).baseAddress!).packedForDecode()
            }
            let b = FloatBuffer(count: rows * cols)
            storage.append(b)
            try Self.load(gguf, t, into: b.p)
            return QuantMatrix(format: .f32, rows: rows, cols: cols, data: UnsafeRawPointer(b.p), owner: b)
        }

        let embT = try bind("token_embd.weight", [C, V])
        tokenEmbedding = try quant(embT)
        outputNorm = try vector("output_norm.weight", C)
        if gguf.tensor("output.weight") != nil {
            lmHeadTensor = try bind("output.weight", [C, V])
            lmHeadQuant = try quant(lmHeadTensor)
            tiedOutput = false
        } else {
            lmHeadTensor = embT
            lmHeadQuant = tokenEmbedding
            tiedOutput = true
        }

        var blocks: [LlamaBlockWeights] = []
        var tensors: [[GGUFTensorInfo]] = []
        for l in 0..<config.blockCount {
            let p = "blk.\(l)."
            let ts = [
                try bind(p + "attn_q.weight", [C, NH * HS]),
                try bind(p + "attn_k.weight", [C, NKV * HS]),
                try bind(p + "attn_v.weight", [C, NKV * HS]),
                try bind(p + "attn_output.weight", [NH * HS, C]),
                try bind(p + "ffn_gate.weight", [C, FF]),
                try bind(p + "ffn_up.weight", [C, FF]),
                try bind(p + "ffn_down.weight", [FF, C]),
            ]
            let attnNorm = try vector(p + "attn_norm.weight", C)
            let ffnNorm = try vector(p + "ffn_norm.weight", C)
            let m = try ts.map(quant)
            blocks.append(LlamaBlockWeights(attnNorm: attnNorm, ffnNorm: ffnNorm,
                                            q: m[0], k: m[1], v: m[2], o: m[3], gate: m[4], up: m[5], down: m[6]))
            tensors.append(ts)
        }
        self.blocks = blocks
        self.blockTensors = tensors
        self.storage = storage
    }

    private static func load(_ gguf: GGUFFile, _ t: GGUFTensorInfo, into dst: UnsafeMutablePointer<Float>) throws {
        do { try gguf.dequantize(t, into: UnsafeMutableBufferPointer(start: dst, count: t.elementCount)) } catch {
            throw ModelError.unsupported(file: gguf.path, what: "tensor '\(t.name)'", hint: "\(error)")
        }
    }

    /// Token `id`'s embedding row.
    /// - Parameters:
    ///   - dst: [C]
    public func embeddingRow(_ id: Int, into dst: UnsafeMutablePointer<Float>) {
        tokenEmbedding.dequantizeRowFast(id, into: dst)
    }

    /// The fp32 fused matrices of every block, dequantized on first use (thread-safe).
    public func fp32Blocks() -> [LlamaBlockFP32] {
        lock.lock()
        defer { lock.unlock() }
        if let b = fp32Cache { return b }
        let C = config.embeddingLength, FF = config.feedForwardLength
        let NH = config.headCount, NKV = config.headCountKV, HS = config.headSize
        var out: [LlamaBlockFP32] = []
        for ts in blockTensors {
            let qkv = FloatBuffer(count: config.qkvWidth * C), o = FloatBuffer(count: C * NH * HS)
            let gu = FloatBuffer(count: 2 * FF * C), d = FloatBuffer(count: C * FF)
            storage += [qkv, o, gu, d]
            // the tensors were validated at bind time, so dequantization cannot fail here
            try! Self.load(gguf, ts[0], into: qkv.p)
            try! Self.load(gguf, ts[1], into: qkv.p + NH * HS * C)
            try! Self.load(gguf, ts[2], into: qkv.p + (NH + NKV) * HS * C)
            try! Self.load(gguf, ts[3], into: o.p)
            try! Self.load(gguf, ts[4], into: gu.p)
            try! Self.load(gguf, ts[5], into: gu.p + FF * C)
            try! Self.load(gguf, ts[6], into: d.p)
            out.append(LlamaBlockFP32(wqkv: qkv.p, wo: o.p, wGateUp: gu.p, wDown: d.p))
        }
        fp32Cache = out
        return out
    }

    /// [V, C] the LM head in fp32, dequantized on first use (thread-safe).
    public func lmHeadFP32() -> UnsafeMutablePointer<Float> {
        lock.lock()
        defer { lock.unlock() }
        if let p = lmHeadCache { return p }
        let b = FloatBuffer(count: config.vocabSize * config.embeddingLength)
        storage.append(b)
        try! Self.load(gguf, lmHeadTensor, into: b.p)
        lmHeadCache = b.p
        return b.p
    }

    /// Bytes of weights one decode step reads (the decode matrices plus the norms).
    public var decodeBytesPerToken: Int { decodeTraffic.reduce(0) { $0 + $1.bytes } }

    /// What one decode step reads, grouped by the type the file stores the tensors in:
    /// every block matrix and the LM head once (the embedding row lookup is negligible),
    /// plus the fp32 norm vectors. The decode layouts of Q4_0/Q4_1/Q8_0 have exactly the
    /// size of the file's blocks; a type without a decode kernel (Q5_x, K-quants) is read
    /// through its fp32 copy, so it is counted at 4 B per weight.
    public var decodeTraffic: [(type: String, tensors: Int, weights: Int, bytes: Int)] {
        var byType: [String: (tensors: Int, weights: Int, bytes: Int)] = [:]
        func add(_ t: GGUFTensorInfo, _ m: QuantMatrix) {
            let key = m.format == .f32 && t.type != .f32 ? "\(t.type.name) (read as F32)" : t.type.name
            let old = byType[key] ?? (0, 0, 0)
            byType[key] = (old.tensors + 1, old.weights + m.rows * m.cols, old.bytes + m.rows * m.rowBytes)
        }
        for (ts, b) in zip(blockTensors, blocks) {
            for (t, m) in zip(ts, [b.q, b.k, b.v, b.o, b.gate, b.up, b.down]) { add(t, m) }
        }
        add(lmHeadTensor, lmHeadQuant)
        let norms = 2 * config.blockCount + 1
        var out = byType.map { (type: $0.key, tensors: $0.value.tensors, weights: $0.value.weights, bytes: $0.value.bytes) }
        out.sort { $0.bytes > $1.bytes }
        out.append((type: "F32 norms", tensors: norms, weights: norms * config.embeddingLength, bytes: norms * config.embeddingLength * 4))
        return out
    }
}
