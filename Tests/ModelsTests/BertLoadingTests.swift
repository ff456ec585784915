// BERT loading against a tiny in-memory checkpoint: every tensor bound by name and shape,
// errors that name the tensor with expected vs actual; config validation.
import Foundation
import Testing
import TestSupport
import Models

/// Deterministic values in [-0.5, 0.5).
func pseudoRandom(_ n: Int, seed: UInt64) -> [Float] {
    var s = seed
    return (0..<n).map { _ in
        s = s &* 6364136223846793005 &+ 1442695040888963407
        return Float(s >> 40) / Float(1 << 24) - 0.5
    }
}

func tinyConfig() -> BertConfig {
    var c = BertConfig()
    c.vocabSize = 50; c.hiddenSize = 8; c.numHiddenLayers = 2; c.numAttentionHeads = 2
    c.intermediateSize = 16; c.maxPositionEmbeddings = 12
    return c
}

/// Every tensor a tiny BERT needs, with random values.
func tinyCheckpoint(_ c: BertConfig, prefix: String = "") -> BertTensorDictionary {
    let C = c.hiddenSize, FF = c.intermediateSize
    var shapes: [(String, [Int])] = [
        ("embeddings.word_embeddings.weight", [c.vocabSize, C]),
        ("embeddings.position_embeddings.weight", [c.maxPositionEmbeddings, C]),
        ("embeddings.token_type_embeddings.weight", [c.typeVocabSize, C]),
        ("embeddings.LayerNorm.weight", [C]), ("embeddings.LayerNorm.bias", [C]),
        ("pooler.dense.weight", [C, C]), ("pooler.dense.bias", [C]),
    ]
    for l in 0..<c.numHiddenLayers {
        let p = "encoder.layer.\(l)."
        for n in ["query", "key", "value"] {
            shapes.append((p + "attention.self.\(n).weight", [C, C]))
            shapes.append((p + "attention.self.\(n).bias", [C]))
        }
        shapes += [
            (p + "attention.output.dense.weight", [C, C]), (p + "attention.output.dense.bias", [C]),
            (p + "attention.output.LayerNorm.weight", [C]), (p + "attention.output.LayerNorm.bias", [C]),
            (p + "intermediate.dense.weight", [FF, C]), (p + "intermediate.dense.bias", [FF]),
            (p + "output.dense.weight", [C, FF]), (p + "output.dense.bias", [C]),
            (p + "output.LayerNorm.weight", [C]), (p + "output.LayerNorm.bias", [C]),
        ]
    }
    var d = BertTensorDictionary(sourcePath: "tiny.safetensors")
    for (i, (name, shape)) in shapes.enumerated() {
        d.tensors[prefix + name] = (shape, pseudoRandom(shape.reduce(1, *), seed: UInt64(i + 1)))
    }
    return d
}

@Suite struct BertLoadingTests {
    @Test func tinyModelLoadsAndRuns() throws {
        let c = tinyConfig()
        let model = try BertModel(config: c, source: tinyCheckpoint(c))
        let h = try model.forward([[1, 2, 3], [4], [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]])
        #expect(h.values.count == 16 * 8 && h.offsets == [0, 3, 4, 16])
        #expect(h.values.allSatisfy { $0.isFinite })
        // A "bert."-prefixed checkpoint (BertForMaskedLM style) binds the same tensors.
        let prefixed = try BertModel(config: c, source: tinyCheckpoint(c, prefix: "bert."))
        #expect(try prefixed.forward([[1, 2, 3]]).values == model.forward([[1, 2, 3]]).values)
    }

    @Test func missingTensorIsNamed() {
        let c = tinyConfig()
        var d = tinyCheckpoint(c)
        d.tensors["encoder.layer.1.output.dense.bias"] = nil
        #expect(throws: ModelError.missingTensor(file: "tiny.safetensors", tensor: "encoder.layer.1.output.dense.bias")) {
            try BertModel(config: c, source: d)
        }
    }

    @Test func shapeMismatchIsNamed() {
        let c = tinyConfig()
        var d = tinyCheckpoint(c)
        d.tensors["encoder.layer.0.intermediate.dense.weight"] = ([8, 16], pseudoRandom(128, seed: 9))
        #expect(throws: ModelError.shapeMismatch(file: "tiny.safetensors", tensor: "encoder.layer.0.intermediate.dense.weight",
                                                 expected: [16, 8], actual: [8, 16])) {
            try BertModel(config: c, source: d)
        }
    }

    @Test func configDefaultsAndValidation() throws {
        let partial = try JSONDecoder().decode(BertConfig.self, from: Data(#"{"hidden_size": 768, "num_attention_heads": 12}"#.utf8))
        #expect(partial.hiddenSize == 768 && partial.numHiddenLayers == 6 && partial.headSize == 64)
        let real = try BertConfig.load(Fixtures.miniLM.appendingPathComponent("config.json"))
        #expect(real == BertConfig())

        var bad = BertConfig(); bad.numAttentionHeads = 5
        #expect(throws: ModelError.self) { try bad.validate(file: "config.json") }
        var act = BertConfig(); act.hiddenAct = "relu"
        #expect(throws: ModelError.unsupported(file: "config.json", what: "hidden_act 'relu'", hint: "only 'gelu' (exact erf) is implemented")) {
            try act.validate(file: "config.json")
        }
        let dir = try Fixtures.temporaryDirectory("bertcfg")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("config.json")
        try Data("{not json".utf8).write(to: url)
        #expect(throws: ModelError.self) { try BertConfig.load(url) }
        #expect(throws: ModelError.self) { try BertModel(directory: dir.appendingPathComponent("nothing")) }
    }
}
