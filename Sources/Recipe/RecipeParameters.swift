// All trainable tensors of the editor in one flat buffer (llm.c's ParameterTensors): one
// allocation for values, one for gradients, two for Adam's moments; checkpoints write the
// buffer as it is. The order and shapes below are the checkpoint layout: new tensors go at
// the end, zero-size when their option is off, so older checkpoints keep their layout.

public enum RecipeTensor: Int, CaseIterable, Sendable {
    case knowledgeW1, knowledgeB1, knowledgeW2, knowledgeB2
    case queryW1, queryB1, queryW2, queryB2
    case promptW1, promptB1, promptW2, promptB2
    case sentinel
    case promptQuery, promptPositionBias, promptValueW, promptValueB
    case promptQueryW
    case queryEncoder

    public var name: String {
        switch self {
        case .knowledgeW1: "knowledge.w1"
        case .knowledgeB1: "knowledge.b1"
        case .knowledgeW2: "knowledge.w2"
        case .knowledgeB2: "knowledge.b2"
        case .queryW1: "query.w1"
        case .queryB1: "query.b1"
        case .queryW2: "query.w2"
        case .queryB2: "query.b2"
        case .promptW1: "prompt.w1"
        case .promptB1: "prompt.b1"
        case .promptW2: "prompt.w2"
        case .promptB2: "prompt.b2"
        case .sentinel: "sentinel"
        case .promptQuery: "prompt.attention.query"
        case .promptPositionBias: "prompt.attention.position_bias"
        case .promptValueW: "prompt.attention.value.w"
        case .promptValueB: "prompt.attention.value.b"
        case .promptQueryW: "prompt.attention.query.w"
        case .queryEncoder: "query.encoder.layer"
        }
    }

    /// Shape for `config` (row-major, [out, in] for matrices).
    public func shape(_ c: RecipeConfig) -> [Int] {
        let F = c.featureWidth, R = c.representationWidth, PC = c.promptLength * c.modelWidth
        switch self {
        case .knowledgeW1, .queryW1: return [R, F]
        case .knowledgeW2, .queryW2, .promptW1: return [R, R]
        case .knowledgeB1, .knowledgeB2, .queryB1, .queryB2, .promptB1, .sentinel: return [R]
        case .promptW2: return [PC, R]
        case .promptB2: return [PC]
        case .promptQuery: return [c.promptLength, c.modelWidth]
        case .promptPositionBias: return [c.promptLength, RecipeConfig.positionBuckets]
        case .promptValueW: return c.slotConditioning ? [c.promptLength, c.modelWidth, c.modelWidth] : [c.modelWidth, c.modelWidth]
        case .promptValueB: return c.slotConditioning ? [c.promptLength, c.modelWidth] : [c.modelWidth]
        case .promptQueryW: return c.slotConditioning ? [PC, R] : [0]
        case .queryEncoder: return c.queryEncoderLayers > 0 ? [RecipeConfig.encoderLayerWeights(featureWidth: F).count] : [0]
        }
    }

    /// Whether the tensor belongs to the knowledge head (frozen by `trainKnowledgeHead` = false).
    public var isKnowledgeHead: Bool {
        switch self {
        case .knowledgeW1, .knowledgeB1, .knowledgeW2, .knowledgeB2: true
        default: false
        }
    }

    /// Whether a fact's stored key or prompt depends on the tensor: the knowledge head and the
    /// prompt transformer. The rest (query head, query encoder layer, sentinel) acts at query
    /// time only, so an editor retrained there keeps every repository row.
    public var shapesFacts: Bool { isKnowledgeHead || isPromptTransformer }

    /// Whether the tensor belongs to the prompt transformer (own learning rate).
    public var isPromptTransformer: Bool {
        switch self {
        case .promptW1, .promptB1, .promptW2, .promptB2, .promptQuery, .promptPositionBias, .promptValueW, .promptValueB,
             .promptQueryW: true
        default: false
        }
    }
}

/// A flat float buffer laid out by `RecipeTensor` for one config. A class that owns its
/// memory (as llm.c's parameter buffer), so the networks can take views into it while
/// gradients are written into a second buffer of the same layout.
public final class RecipeParameters: @unchecked Sendable {
    public let config: RecipeConfig
    public let offsets: [Int]
    public let count: Int
    public let base: UnsafeMutablePointer<Float>

    /// A zero-filled buffer for `config`.
    public init(config: RecipeConfig) {
        self.config = config
        var offsets: [Int] = []
        var total = 0
        for t in RecipeTensor.allCases {
            offsets.append(total)
            total += t.shape(config).reduce(1, *)
        }
        self.offsets = offsets
        count = total
        base = .allocate(capacity: total)
        base.initialize(repeating: 0, count: total)
    }

    /// A buffer holding `values` (which must have the layout's size).
    public convenience init(config: RecipeConfig, values: [Float]) throws {
        self.init(config: config)
        guard values.count == count else {
            throw RecipeError.invalidArgument("parameter buffer has \(values.count) values, the layout needs \(count)")
        }
        values.withUnsafeBufferPointer { _ = UnsafeMutableBufferPointer(start: base, count: count).update(fromContentsOf: $0) }
    }

    deinit { base.deallocate() }

    public var all: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: base, count: count) }
    public var values: [Float] { Array(all) }

    public func pointer(_ t: RecipeTensor) -> UnsafeMutablePointer<Float> { base + offsets[t.rawValue] }

    public func range(_ t: RecipeTensor) -> Range<Int> {
        let start = offsets[t.rawValue]
        return start..<(start + t.shape(config).reduce(1, *))
    }

    public subscript(_ t: RecipeTensor) -> UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: pointer(t), count: range(t).count)
    }

    public func zero() { all.update(repeating: 0) }

    public func copy() -> RecipeParameters {
        let c = RecipeParameters(config: config)
        c.base.update(from: base, count: count)
        return c
    }
}
