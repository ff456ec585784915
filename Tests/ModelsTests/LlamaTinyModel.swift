// A tiny random Llama written with GGUFWriter, for tests that need other tensor types,
// shapes with tail blocks, an untied LM head, or broken files.
import Foundation
import Kernels
import Models
import WeightFormats

enum LlamaTinyModel {
    // V vocab, C width (96 = 64 + 32: exercises the packed tail groups), FF = 160 = 128 + 32
    static let V = 96, C = 96, L = 2, FF = 160, NH = 6, NKV = 2, context = 64

    /// Metadata and tensors of a tiny Llama with every matrix in `type`.
    /// - Parameters:
    ///   - tied: leave out `output.weight` (the LM head is `token_embd`)
    ///   - mutate: a last chance to break the file (tests of refusal)
    static func writer(type: GGMLType, tied: Bool = false, seed: UInt64 = 1,
                       mutate: (inout [(String, [Int], GGMLType, [Float])]) -> Void = { _ in }) throws -> GGUFWriter {
        var w = GGUFWriter()
        w.set("general.architecture", "llama")
        w.set("llama.embedding_length", C)
        w.set("llama.block_count", L)
        w.set("llama.feed_forward_length", FF)
        w.set("llama.attention.head_count", NH)
        w.set("llama.attention.head_count_kv", NKV)
        w.set("llama.context_length", context)
        w.set("llama.rope.freq_base", Float(10000))
        w.set("llama.attention.layer_norm_rms_epsilon", Float(1e-5))
        var s = seed
        func random(_ n: Int, scale: Float) -> [Float] {
            (0..<n).map { _ in
                s = s &* 6364136223846793005 &+ 1442695040888963407
                return (Float(s >> 40) / Float(1 << 24) * 2 - 1) * scale
            }
        }
        let HS = C / NH
        var tensors: [(String, [Int], GGMLType, [Float])] = []
        func matrix(_ name: String, _ inDim: Int, _ outDim: Int) {
            tensors.append((name, [inDim, outDim], type, random(inDim * outDim, scale: 1 / Float(inDim).squareRoot() * 1.7)))
        }
        func norm(_ name: String) { tensors.append((name, [C], .f32, random(C, scale: 0.3).map { 1 + $0 })) }
        tensors.append(("token_embd.weight", [C, V], type, random(V * C, scale: 1)))
        norm("output_norm.weight")
        if !tied { matrix("output.weight", C, V) }
        for l in 0..<L {
            let p = "blk.\(l)."
            norm(p + "attn_norm.weight"); norm(p + "ffn_norm.weight")
            matrix(p + "attn_q.weight", C, NH * HS)
            matrix(p + "attn_k.weight", C, NKV * HS)
            matrix(p + "attn_v.weight", C, NKV * HS)
            matrix(p + "attn_output.weight", NH * HS, C)
            matrix(p + "ffn_gate.weight", C, FF)
            matrix(p + "ffn_up.weight", C, FF)
            matrix(p + "ffn_down.weight", FF, C)
        }
        mutate(&tensors)
        for (name, shape, t, values) in tensors { try w.addTensor(name: name, shape: shape, type: t, values: values) }
        return w
    }

    /// The tiny model, parsed from memory.
    static func model(type: GGMLType, tied: Bool = false) throws -> Llama {
        let bytes = try writer(type: type, tied: tied).serialized()
        return try Llama(gguf: GGUFFile(file: MappedFile(copying: bytes, path: "tiny-\(type.name).gguf")))
    }
}
