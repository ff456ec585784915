// How an editor encodes queries: the frozen encoder's [pooler, mean, max, min] features, or,
// when the editor fine-tunes the encoder's top layer for queries
// (`RecipeConfig.queryEncoderLayers`), the frozen layers below it, the editor's own copy of
// the top layer (tensor `queryEncoder`), then the encoder's pooling. Statements always take
// the frozen encoder, so knowledge keys and prompts are the same either way.
//
// Training runs the top layer forward and backward on the states below it, which do not
// change and are computed once per text (`LowerStateTable`, in RecipeTraining).
import Models

public struct QueryEncoder: Sendable {
    public let encoder: BertEncoder
    public let parameters: RecipeParameters
    let layer: BertTrainableLayer?

    /// Throws when the editor's encoder layer does not fit `encoder` (another width or
    /// feed-forward size).
    public init(encoder: BertEncoder, parameters: RecipeParameters) throws {
        self.encoder = encoder
        self.parameters = parameters
        let c = parameters.config
        guard c.queryEncoderLayers > 0 else { layer = nil; return }
        let bert = encoder.model.config
        let expected = RecipeConfig.encoderLayerWeights(featureWidth: c.featureWidth)
        guard bert.hiddenSize == expected.C, bert.intermediateSize == expected.FF else {
            throw RecipeError.invalidArgument("the editor's query encoder layer is \(expected.C) wide with a \(expected.FF) feed-forward; "
                                              + "the encoder is \(bert.hiddenSize) and \(bert.intermediateSize)")
        }
        layer = BertTrainableLayer(config: bert)
    }

    /// Copies the encoder's top layer into the editor's (the start of fine-tuning: queries
    /// are then encoded exactly as by the frozen encoder).
    public func initialize() {
        guard isFineTuned, let top = encoder.model.layers.last else { return }
        top.copyWeights(into: parameters.pointer(.queryEncoder))
    }

    /// The features of `texts` as a table (each text once), in batches of `batch`.
    public func table(_ texts: [String], batch: Int = 256, progress: (Int, Int) -> Void = { _, _ in }) -> FeatureTable {
        var seen = Set<String>()
        let unique = texts.filter { seen.insert($0).inserted }
        var values: [Float] = []
        var done = 0
        while done < unique.count {
            let chunk = Array(unique[done..<min(unique.count, done + batch)])
            values += features(chunk)
            done += chunk.count
            progress(done, unique.count)
        }
        return FeatureTable(width: parameters.config.featureWidth, texts: unique, features: values)
    }

    /// Whether queries go through the editor's own top layer.
    public var isFineTuned: Bool { layer != nil }

    /// Layers of the frozen encoder below the editor's.
    public var lowerLayers: Int { encoder.model.layers.count - parameters.config.queryEncoderLayers }

    /// The query head's features [N, F] of N texts.
    public func features(_ texts: [String]) -> [Float] {
        guard isFineTuned else { return encoder.featureMatrix(texts) }
        guard !texts.isEmpty else { return [] }
        return forward(lower: encoder.hiddenStates(texts, layers: lowerLayers)).features
    }

    /// Features [N, F] from the states below the editor's layer, with what `backward` needs.
    public func forward(lower: BertHiddenStates) -> (features: [Float], cache: Cache) {
        guard let layer else { preconditionFailure("QueryEncoder.forward: the editor does not fine-tune the encoder") }
        let (y, cache) = layer.forward(parameters.pointer(.queryEncoder), x: lower.values, offsets: lower.offsets)
        let top = BertHiddenStates(values: y, offsets: lower.offsets, width: lower.width)
        let features = encoder.pooledFeatures(top).flatMap { $0 }
        return (features, Cache(top: top, features: features, layer: cache))
    }

    /// Accumulates the editor layer's weight gradients into `grads` from d features [N, F].
    public func backward(dFeatures: [Float], cache: Cache, grads: RecipeParameters) {
        guard let layer else { return }
        let dy = encoder.pooledFeaturesBackward(cache.top, features: cache.features, dFeatures: dFeatures)
        layer.backward(parameters.pointer(.queryEncoder), grads: grads.pointer(.queryEncoder), dy: dy, cache: cache.layer)
    }

    public struct Cache {
        let top: BertHiddenStates
        let features: [Float]
        let layer: BertLayerCache
    }
}
