// A BERT encoder (all-MiniLM-L6-v2: 6 layers, C = 384, 12 heads of 32, FF = 1536, post-
// LayerNorm, exact-erf GELU) running a batch of variable-length token sequences without
// padding: the rows of all sequences are stacked, so each dense layer is one sgemm over
// N = Σ T_b rows, and only attention looks at sequence boundaries.
// Port of Hugging Face transformers `BertModel` (inference only, token_type_ids all 0);
// checked against ../shared/goldens/reference/minilm_ref.py.
import Foundation
import Kernels
import WeightFormats

/// The last hidden states of a batch, stacked row-wise.
public struct BertHiddenStates: Sendable {
    /// [N, C] hidden states of all sequences, one after the other
    public let values: [Float]
    /// [B + 1] start row of each sequence, then N
    public let offsets: [Int]
    /// C: width of a row.
    public let width: Int

    public init(values: [Float], offsets: [Int], width: Int) {
        precondition(offsets.first == 0 && values.count == (offsets.last ?? 0) * width, "hidden states: rows and offsets disagree")
        self.values = values
        self.offsets = offsets
        self.width = width
    }

    /// B: number of sequences.
    public var count: Int { offsets.count - 1 }

    /// [T_b, C] rows of sequence `b`.
    public func sequence(_ b: Int) -> ArraySlice<Float> {
        values[offsets[b] * width..<offsets[b + 1] * width]
    }
}

public final class BertModel: Sendable {
    public let config: BertConfig
    public let embeddings: BertEmbeddings
    public let layers: [BertLayer]
    public let pooler: BertPooler
    /// The weights file, for messages.
    public let path: String
    /// Owns the memory that the tensor views point into.
    let parameters: BertParameters
    /// Owns the layers' packed copies of their dense weights (`BertLayer.pack`).
    let panels: FloatBuffer

    /// Loads `config.json` and `model.safetensors` from a model directory.
    public convenience init(directory: URL) throws {
        let config = try BertConfig.load(directory.appendingPathComponent("config.json"))
        let weights = try ModelPaths.require(directory.appendingPathComponent("model.safetensors"))
        try self.init(config: config, source: SafetensorsFile(path: weights.path))
    }

    /// Binds every tensor of `source` with the shape `config` implies, then reads them.
    /// Throws `ModelError.missingTensor` / `.shapeMismatch` naming the file and tensor.
    public init(config: BertConfig, source: any BertTensorSource) throws {
        try config.validate(file: source.sourcePath)
        var binder = BertTensorBinder(source: source, capacity: Self.parameterCount(config))
        // Step one: every tensor present with its shape (nothing read yet).
        let embeddings = try BertEmbeddings(&binder, config)
        var layers: [BertLayer] = []
        for l in 0..<config.numHiddenLayers { layers.append(try BertLayer(&binder, config, layer: l)) }
        let pooler = try BertPooler(&binder, config)
        // Step two: the values, then the packed copies for short batches.
        parameters = try binder.load()
        panels = FloatBuffer(count: layers.reduce(0) { $0 + $1.panelCount })
        var next = panels.p
        for l in layers.indices {
            layers[l].pack(into: next)
            next += layers[l].panelCount
        }
        self.config = config
        self.embeddings = embeddings
        self.layers = layers
        self.pooler = pooler
        path = source.sourcePath
    }

    /// Number of floats in the model's parameters.
    public static func parameterCount(_ config: BertConfig) -> Int {
        BertEmbeddings.parameterCount(config) + config.numHiddenLayers * BertLayer.parameterCount(config)
            + BertPooler.parameterCount(config)
    }

    /// Last hidden states of each token sequence (no padding: sequences may differ in length).
    /// `layerCount` stops after that many layers (0: the embeddings after their LayerNorm),
    /// for debugging against intermediate values.
    /// Throws `ModelError.invalidInput` for an empty sequence, one longer than
    /// `maxPositionEmbeddings`, or an id outside the vocabulary.
    public func forward(_ batch: [[Int]], layerCount: Int? = nil) throws -> BertHiddenStates {
        if let n = layerCount, n < 0 || n > layers.count {
            throw ModelError.invalidInput("layerCount \(n) is outside 0...\(layers.count)")
        }
        try validate(batch)
        return forwardValidated(batch, layerCount: layerCount ?? layers.count)
    }

    /// Throws `ModelError.invalidInput` unless every sequence is non-empty, at most
    /// `maxPositionEmbeddings` long, and made of ids inside the vocabulary.
    public func validate(_ batch: [[Int]]) throws {
        for (b, seq) in batch.enumerated() {
            guard !seq.isEmpty else { throw ModelError.invalidInput("sequence \(b) is empty") }
            guard seq.count <= config.maxPositionEmbeddings else {
                throw ModelError.invalidInput("sequence \(b) has \(seq.count) tokens, the model takes at most \(config.maxPositionEmbeddings)")
            }
            if let bad = seq.first(where: { $0 < 0 || $0 >= config.vocabSize }) {
                throw ModelError.invalidInput("sequence \(b) has token id \(bad), outside 0..<\(config.vocabSize)")
            }
        }
    }

    /// `forward` for sequences already known to be valid (non-empty, ≤ maxPositionEmbeddings,
    /// ids in the vocabulary).
    func forwardValidated(_ batch: [[Int]], layerCount: Int? = nil) -> BertHiddenStates {
        let C = config.hiddenSize, FF = config.intermediateSize
        var offsets = [0]
        offsets.reserveCapacity(batch.count + 1)
        for seq in batch { offsets.append(offsets.last! + seq.count) }
        let N = offsets.last!
        let ids = Array(batch.joined())

        let qkv = UnsafeMutablePointer<Float>.allocate(capacity: max(N * 3 * C, 1))
        let attention = UnsafeMutablePointer<Float>.allocate(capacity: max(N * C, 1))
        let hidden = UnsafeMutablePointer<Float>.allocate(capacity: max(N * FF, 1))
        defer { qkv.deallocate(); attention.deallocate(); hidden.deallocate() }
        let scratch = BertLayer.Scratch(qkv: qkv, attention: attention, hidden: hidden)

        var x = [Float](repeating: 0, count: N * C)
        x.withUnsafeMutableBufferPointer { xp in
            guard let x = xp.baseAddress else { return }
            embeddings.forward(x, ids: ids, offsets: offsets)
            for layer in layers.prefix(layerCount ?? layers.count) { layer.forward(x, offsets: offsets, scratch: scratch) }
        }
        return BertHiddenStates(values: x, offsets: offsets, width: C)
    }
}
