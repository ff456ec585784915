// Reads the real all-MiniLM-L6-v2 model.safetensors: every tensor present with the shape
// that config.json implies, and readable.
import Foundation
import Testing
import TestSupport
import WeightFormats

@Suite struct SafetensorsRealFileTests {
    struct BertConfig: Decodable {
        let hidden_size: Int, intermediate_size: Int, num_hidden_layers: Int
        let vocab_size: Int, max_position_embeddings: Int, type_vocab_size: Int
    }

    @Test func everyTensorHasTheConfiguredShapeAndIsReadable() throws {
        let dir = Fixtures.miniLM
        let path = dir.appendingPathComponent("model.safetensors").path
        guard FileManager.default.fileExists(atPath: path) else { throw MissingFixture(path: path) }
        let c = try JSONDecoder().decode(BertConfig.self, from: Fixtures.read(dir.appendingPathComponent("config.json")))
        let f = try SafetensorsFile(path: path)
        let (H, I) = (c.hidden_size, c.intermediate_size)
        var expected: [String: [Int]] = [
            "embeddings.word_embeddings.weight": [c.vocab_size, H],
            "embeddings.position_embeddings.weight": [c.max_position_embeddings, H],
            "embeddings.token_type_embeddings.weight": [c.type_vocab_size, H],
            "embeddings.LayerNorm.weight": [H], "embeddings.LayerNorm.bias": [H],
            "embeddings.position_ids": [1, c.max_position_embeddings],
            "pooler.dense.weight": [H, H], "pooler.dense.bias": [H],
        ]
        for l in 0..<c.num_hidden_layers {
            let p = "encoder.layer.\(l)."
            for m in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"] {
                expected[p + m + ".weight"] = [H, H]
                expected[p + m + ".bias"] = [H]
            }
            for n in ["attention.output.LayerNorm", "output.LayerNorm"] {
                expected[p + n + ".weight"] = [H]
                expected[p + n + ".bias"] = [H]
            }
            expected[p + "intermediate.dense.weight"] = [I, H]
            expected[p + "intermediate.dense.bias"] = [I]
            expected[p + "output.dense.weight"] = [H, I]
            expected[p + "output.dense.bias"] = [H]
        }
        #expect(f.tensors.count == expected.count)
        #expect(f.metadata == ["format": "pt"])
        for (name, shape) in expected {
            let t = try #require(f.tensors[name], "\(name) missing")
            #expect(t.shape == shape, "\(name)")
            if t.dtype == .f32 {
                let v = try f.floats(name)
                #expect(v.count == shape.reduce(1, *) && v.allSatisfy(\.isFinite), "\(name)")
            }
        }
        let view = try #require(try f.floatView("encoder.layer.3.intermediate.dense.weight"), "F32 data should be aligned in this file")
        #expect(Array(view) == (try f.floats("encoder.layer.3.intermediate.dense.weight")))
        #expect(try f.floatView("embeddings.position_ids") == nil)
        #expect(try f.ints("embeddings.position_ids") == Array(0..<512))
        #expect(f.tensors["embeddings.position_ids"]?.dtype == .i64)
        #expect(expectWeightError { _ = try f.floats("embeddings.position_ids") } != nil)
        #expect(expectWeightError { _ = try f.floats("nope") } == .missingTensor(path: path, tensor: "nope"))
        // Check one value against the raw bytes, independently of floats().
        let ln = try f.floats("embeddings.LayerNorm.weight")
        let raw = try f.data("embeddings.LayerNorm.weight")
        #expect(ln[5] == Float(bitPattern: UInt32(raw[20]) | UInt32(raw[21]) << 8 | UInt32(raw[22]) << 16 | UInt32(raw[23]) << 24))
    }
}
