// Parses the real SmolLM2-135M-Instruct Q4_1 GGUF and checks its header, directory and
// dequantization against the independent goldens in ../shared/goldens/smollm2.json.
import Foundation
import Testing
import TestSupport
import WeightFormats

struct DequantCheck: Decodable {
    let type: String
    let raw_first2blocks_hex: String?
    let first64: [Double]?
    let row_sum_f64: Double?
    let first8: [Double]?
}

/// A model file that is not there: the test fails and says how to get it.
struct MissingFixture: Error, CustomStringConvertible {
    let path: String
    var description: String { "missing fixture \(path): run Pipelines/fetch-models.sh" }
}

struct SmolGoldens: Decodable {
    let dequant_checks: [String: DequantCheck]
}

@Suite struct GGUFRealFileTests {
    static func open() throws -> GGUFFile {
        guard FileManager.default.fileExists(atPath: Fixtures.smolLM2.path) else { throw MissingFixture(path: Fixtures.smolLM2.path) }
        return try GGUFFile(path: Fixtures.smolLM2.path)
    }

    @Test func header() throws {
        let f = try Self.open()
        #expect(f.version == 3)
        #expect(f.alignment == 32)
        #expect(f.tensors.count == 272)
        #expect(f.metadataKeys.count == 33)
        #expect(f.metadataKeys.first == "general.architecture")
        #expect(try f.architecture() == "llama")
        #expect(try f.int("llama.block_count") == 30)
        #expect(try f.int("llama.embedding_length") == 576)
        #expect(try f.int("llama.feed_forward_length") == 1536)
        #expect(try f.int("llama.attention.head_count") == 9)
        #expect(try f.int("llama.attention.head_count_kv") == 3)
        #expect(try f.int("llama.context_length") == 8192)
        #expect(try f.int("llama.rope.dimension_count") == 64)
        #expect(try f.float("llama.rope.freq_base") == 100000)
        #expect(try f.float("llama.attention.layer_norm_rms_epsilon") == Float(9.999999747378752e-06))
        #expect(try f.string("tokenizer.ggml.model") == "gpt2")
        #expect(try f.string("tokenizer.ggml.pre") == "smollm")
        #expect(try f.bool("tokenizer.ggml.add_bos_token") == false)
        #expect(try f.int("tokenizer.ggml.bos_token_id") == 1)
        #expect(try f.int("tokenizer.ggml.eos_token_id") == 2)
        let tokens = try f.strings("tokenizer.ggml.tokens")
        #expect(tokens.count == 49152)
        #expect(tokens.prefix(3) == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
        let types = try f.ints("tokenizer.ggml.token_type")
        #expect(types.count == 49152 && types.prefix(3) == [3, 3, 3])
        let merges = try f.strings("tokenizer.ggml.merges")
        #expect(merges.count == 48900 && merges.first == "Ġ t")
        #expect(try f.strings("general.languages") == ["en"])
        #expect(try f.optionalInt("llama.no_such_key") == nil)
        #expect(try f.string("tokenizer.chat_template").hasPrefix("{% for message in messages %}"))
        // Descriptions stay short: a vocabulary does not flood a message.
        #expect(f.metadata["tokenizer.ggml.tokens"]!.description
            == #"["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<repo_name>", "<reponame>", "<file_sep>", "<filename>", "<gh_stars>", … (49152 string elements)]"#)
        #expect(f.metadata["llama.block_count"]!.description == "30")
        #expect(f.metadata["tokenizer.chat_template"]!.description.count <= 83)
    }

    @Test func typedHelpersNameKeyAndTypes() throws {
        let f = try Self.open()
        #expect(expectWeightError { _ = try f.int("general.name") }
            == .badMetadata(path: f.path, key: "general.name", expected: "an integer", actual: "string"))
        #expect(expectWeightError { _ = try f.strings("tokenizer.ggml.token_type") }
            == .badMetadata(path: f.path, key: "tokenizer.ggml.token_type", expected: "array of string", actual: "array of int32"))
        #expect(expectWeightError { _ = try f.string("nope") } == .missingKey(path: f.path, key: "nope"))
        #expect(expectWeightError { _ = try f.optionalBool("llama.block_count") }
            == .badMetadata(path: f.path, key: "llama.block_count", expected: "bool", actual: "uint32"))
    }

    @Test func directory() throws {
        let f = try Self.open()
        let size = f.file.bytes.count
        var counts: [GGMLType: Int] = [:]
        for t in f.tensors {
            counts[t.type, default: 0] += 1
            #expect(t.offset % 32 == 0 && t.offset >= f.dataOffset && t.offset + t.byteCount <= size, "\(t.name)")
            #expect(t.elementCount == t.shape.reduce(1, *))
            #expect(f.data(t).count == t.byteCount)
        }
        #expect(counts == [.q4_1: 210, .f32: 61, .q8_0: 1])
        let emb = try #require(f.tensor("token_embd.weight"))
        #expect(emb.shape == [576, 49152] && emb.type == .q8_0 && emb.byteCount == 49152 * 18 * 34)
        #expect(emb.offset == f.dataOffset && f.dataOffset == 1785664)
        #expect(f.tensor("output.weight") == nil)
        let down = try #require(f.tensor("blk.0.ffn_down.weight"))
        #expect(down.shape == [1536, 576] && down.type == .q4_1 && down.rowCount == 576 && down.rowByteCount == 48 * 20)
        #expect(f.tensor("output_norm.weight")?.offset == 96574464 + f.dataOffset)
    }

    @Test func goldenDequantization() throws {
        let f = try Self.open()
        let g = try Fixtures.golden("smollm2.json", as: SmolGoldens.self)
        #expect(g.dequant_checks.count == 6)
        for (key, check) in g.dequant_checks {
            let name = String(key[..<key.firstIndex(of: "[")!])
            let t = try #require(f.tensor(name), "\(name)")
            #expect(t.type.name == check.type)
            if let first8 = check.first8 {
                let v = try f.dequantize(t)
                #expect(Array(v.prefix(8)) == first8.map { Float($0) }, "\(key)")
                continue
            }
            let row = Int(key[key.index(after: key.firstIndex(of: "[")!)..<key.firstIndex(of: "]")!])!
            let hex = try #require(check.raw_first2blocks_hex)
            let raw = Array(f.data(t)[(row * t.rowByteCount)..<(row * t.rowByteCount + 2 * t.type.bytesPerBlock)])
            #expect(raw == hexBytes(hex), "\(key) raw bytes")
            let values = try f.dequantize(t, rows: row..<(row + 1))
            let expected = try #require(check.first64).map { Float($0) }
            let maxDiff = zip(values.prefix(64), expected).map { abs($0 - $1) }.max()!
            #expect(Array(values.prefix(64)) == expected, "\(key): largest |Δ| \(maxDiff)")
            let sum = values.reduce(0.0) { $0 + Double($1) }
            #expect(abs(sum - check.row_sum_f64!) < 1e-9, "\(key) row sum \(sum) vs \(check.row_sum_f64!)")
        }
    }

    @Test(arguments: ["blk.0.attn_q.weight", "blk.3.ffn_down.weight", "output_norm.weight", "blk.29.attn_v.weight"])
    func wholeTensorMatchesNaive(name: String) throws {
        let f = try Self.open()
        let t = try #require(f.tensor(name))
        let fast = try f.dequantize(t)
        var slow = [Float](repeating: .nan, count: t.elementCount)
        dequantizeRowNaive(t.type, f.data(t).baseAddress!, &slow, count: t.elementCount)
        #expect(fast == slow, "largest |Δ| \(zip(fast, slow).map { abs($0 - $1) }.max() ?? 0)")
    }

    /// Each reader refuses the other format clearly instead of misreading it.
    @Test func foreignFormatsAreRefused() throws {
        let st = Fixtures.miniLM.appendingPathComponent("model.safetensors").path
        guard FileManager.default.fileExists(atPath: st) else { throw MissingFixture(path: st) }
        guard case let .badMagic(path, expected, _)? = expectWeightError({ _ = try GGUFFile(path: st) }) else { return }
        #expect(path == st && expected == "GGUF")
        let gguf = Fixtures.smolLM2.path
        guard case let .limitExceeded(_, what, offset, _, _)? = expectWeightError({ _ = try SafetensorsFile(path: gguf) }) else { return }
        #expect(what == "header length" && offset == 0)
    }

    @Test func embeddingRowsMatchWholeTensor() throws {
        let f = try Self.open()
        let t = try #require(f.tensor("token_embd.weight"))
        let all = try f.dequantize(t)
        for row in [0, 1, 4097, 49151] {
            let r = try f.dequantize(t, rows: row..<(row + 1))
            #expect(r == Array(all[(row * 576)..<((row + 1) * 576)]))
        }
        #expect(expectWeightError { _ = try f.dequantize(t, rows: 49151..<49153) } != nil)
    }
}
