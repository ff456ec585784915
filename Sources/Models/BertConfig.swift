// Hyper-parameters of a BERT encoder, read from the checkpoint's config.json (Hugging Face
// `BertConfig` field names). Every field has the all-MiniLM-L6-v2 default, so a partial
// file works; `validate` rejects what this engine does not implement.
import Foundation

public struct BertConfig: Codable, Sendable, Equatable {
    /// V: rows of the word embedding table.
    public var vocabSize: Int = 30522
    /// C: width of the hidden states.
    public var hiddenSize: Int = 384
    /// L: number of transformer layers.
    public var numHiddenLayers: Int = 6
    /// NH: attention heads per layer (HS = C / NH).
    public var numAttentionHeads: Int = 12
    /// FF: width of the feed-forward layer.
    public var intermediateSize: Int = 1536
    /// Longest sequence the position table covers.
    public var maxPositionEmbeddings: Int = 512
    /// Rows of the token type (segment) table.
    public var typeVocabSize: Int = 2
    /// Epsilon inside every LayerNorm's square root.
    public var layerNormEps: Float = 1e-12
    /// Activation of the feed-forward layer; only "gelu" (exact erf) is implemented.
    public var hiddenAct: String = "gelu"
    /// Only "absolute" position embeddings are implemented.
    public var positionEmbeddingType: String = "absolute"

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads", intermediateSize = "intermediate_size"
        case maxPositionEmbeddings = "max_position_embeddings", typeVocabSize = "type_vocab_size"
        case layerNormEps = "layer_norm_eps", hiddenAct = "hidden_act"
        case positionEmbeddingType = "position_embedding_type"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = BertConfig()
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? d.vocabSize
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? d.hiddenSize
        numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? d.numHiddenLayers
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? d.numAttentionHeads
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? d.intermediateSize
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? d.maxPositionEmbeddings
        typeVocabSize = try c.decodeIfPresent(Int.self, forKey: .typeVocabSize) ?? d.typeVocabSize
        layerNormEps = try c.decodeIfPresent(Float.self, forKey: .layerNormEps) ?? d.layerNormEps
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? d.hiddenAct
        positionEmbeddingType = try c.decodeIfPresent(String.self, forKey: .positionEmbeddingType) ?? d.positionEmbeddingType
    }

    /// HS: width of one attention head.
    public var headSize: Int { hiddenSize / numAttentionHeads }

    /// Reads and validates `config.json`; errors name the file and key.
    public static func load(_ url: URL) throws -> BertConfig {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ModelError.notFound(path: url.path, hint: "a BERT model directory holds config.json, model.safetensors and vocab.txt")
        }
        let config: BertConfig
        do { config = try JSONDecoder().decode(BertConfig.self, from: data) } catch {
            throw ModelError.badMetadata(file: url.path, key: "config.json", expected: "a BERT config JSON object", actual: "\(error)")
        }
        try config.validate(file: url.path)
        return config
    }

    /// Throws `ModelError` for impossible values or features this engine lacks.
    public func validate(file: String) throws {
        func positive(_ v: Int, _ key: String) throws {
            guard v > 0 else { throw ModelError.badMetadata(file: file, key: key, expected: "> 0", actual: "\(v)") }
        }
        try positive(vocabSize, "vocab_size")
        try positive(hiddenSize, "hidden_size")
        try positive(numHiddenLayers, "num_hidden_layers")
        try positive(numAttentionHeads, "num_attention_heads")
        try positive(intermediateSize, "intermediate_size")
        try positive(maxPositionEmbeddings, "max_position_embeddings")
        try positive(typeVocabSize, "type_vocab_size")
        guard hiddenSize % numAttentionHeads == 0 else {
            throw ModelError.badMetadata(file: file, key: "num_attention_heads", expected: "a divisor of hidden_size \(hiddenSize)", actual: "\(numAttentionHeads)")
        }
        guard layerNormEps > 0, layerNormEps.isFinite else {
            throw ModelError.badMetadata(file: file, key: "layer_norm_eps", expected: "a small positive number", actual: "\(layerNormEps)")
        }
        guard hiddenAct == "gelu" else {
            throw ModelError.unsupported(file: file, what: "hidden_act '\(hiddenAct)'", hint: "only 'gelu' (exact erf) is implemented")
        }
        guard positionEmbeddingType == "absolute" else {
            throw ModelError.unsupported(file: file, what: "position_embedding_type '\(positionEmbeddingType)'", hint: "only 'absolute' is implemented")
        }
    }
}
