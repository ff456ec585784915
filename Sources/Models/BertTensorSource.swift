// Where BERT's weights come from, and how they are bound: the model asks a source of
// named float tensors (a safetensors file, or a dictionary in tests) for every tensor it
// needs with its expected shape, first checking them all (phase one: names and shapes,
// nothing read), then copying them into one buffer (phase two). The format reader knows
// bytes; this file knows which names BERT needs.
import WeightFormats

/// A source of named float tensors.
public protocol BertTensorSource {
    /// The file the tensors come from, for error messages.
    var sourcePath: String { get }
    /// The shape of `name`, or nil if there is no such (float) tensor.
    func shape(of name: String) -> [Int]?
    /// The values of `name`, row-major, converted to Float.
    func floats(_ name: String) throws -> [Float]
    /// Writes the values of `name` into `destination` (exactly its element count); the
    /// default goes through `floats`, a source may copy straight from its file.
    func copyFloats(_ name: String, into destination: UnsafeMutableBufferPointer<Float>) throws
}

extension BertTensorSource {
    public func copyFloats(_ name: String, into destination: UnsafeMutableBufferPointer<Float>) throws {
        let values = try floats(name)
        guard values.count == destination.count else {
            throw ModelError.shapeMismatch(file: sourcePath, tensor: name, expected: [destination.count], actual: [values.count])
        }
        _ = destination.update(fromContentsOf: values)
    }
}

/// Tensors held in memory (tests, converted checkpoints).
public struct BertTensorDictionary: BertTensorSource, Sendable {
    public var sourcePath: String
    public var tensors: [String: (shape: [Int], values: [Float])]

    public init(sourcePath: String = "<memory>", tensors: [String: (shape: [Int], values: [Float])] = [:]) {
        self.sourcePath = sourcePath
        self.tensors = tensors
    }

    public func shape(of name: String) -> [Int]? { tensors[name]?.shape }

    public func floats(_ name: String) throws -> [Float] {
        guard let t = tensors[name] else { throw ModelError.missingTensor(file: sourcePath, tensor: name) }
        return t.values
    }
}

/// A safetensors file as a tensor source: its floating-point tensors (F32, F16, BF16, F64)
/// by name; integer tensors such as `embeddings.position_ids` are not offered.
extension SafetensorsFile: BertTensorSource {
    public var sourcePath: String { path }

    public func shape(of name: String) -> [Int]? {
        guard let t = tensors[name] else { return nil }
        switch t.dtype {
        case .f32, .f16, .bf16, .f64: return t.shape
        default: return nil
        }
    }

    /// F32 tensors are copied byte for byte from the mapping (little-endian hosts), the
    /// rest converted by `floats`.
    public func copyFloats(_ name: String, into destination: UnsafeMutableBufferPointer<Float>) throws {
        let t = try info(name)
        guard t.dtype == .f32, t.elementCount == destination.count, 1.littleEndian == 1 else {
            let values = try floats(name)
            guard values.count == destination.count else {
                throw ModelError.shapeMismatch(file: path, tensor: name, expected: [destination.count], actual: [values.count])
            }
            _ = destination.update(fromContentsOf: values)
            return
        }
        UnsafeMutableRawBufferPointer(destination).copyMemory(from: try data(name))
    }
}

/// The parameters of a model in one allocation; tensors are views into it. Immutable
/// after loading, which is what makes sharing it across threads sound.
public final class BertParameters: @unchecked Sendable {
    public let base: UnsafeMutablePointer<Float>
    public let count: Int

    init(count: Int) {
        self.count = count
        base = .allocate(capacity: max(count, 1))
        base.initialize(repeating: 0, count: max(count, 1))  // every float is then overwritten by `load`
    }

    deinit { base.deallocate() }
}

/// Binds checkpoint tensors to views into one `BertParameters` buffer, in two steps:
/// `bind` checks that a tensor exists with exactly the expected shape and hands out its
/// view (nothing is read yet), so a wrong file fails before any data is touched; `load`
/// then copies every bound tensor into place.
struct BertTensorBinder {
    let source: any BertTensorSource
    /// "" for sentence-transformers checkpoints, "bert." for BertForMaskedLM-style files.
    let prefix: String
    let parameters: BertParameters
    private(set) var plan: [(name: String, shape: [Int], offset: Int, count: Int)] = []
    private(set) var used = 0

    /// `capacity`: the total number of floats that will be bound (from the config).
    init(source: any BertTensorSource, capacity: Int) {
        self.source = source
        let probe = "embeddings.word_embeddings.weight"
        prefix = source.shape(of: probe) == nil && source.shape(of: "bert." + probe) != nil ? "bert." : ""
        parameters = BertParameters(count: capacity)
    }

    /// `name` must exist with exactly `shape`. Returns its (not yet filled) view; consecutive
    /// calls get consecutive regions, so the q, k and v weights form one [3C, C] matrix.
    mutating func bind(_ name: String, _ shape: [Int]) throws -> UnsafePointer<Float> {
        guard let actual = source.shape(of: prefix + name) else {
            throw ModelError.missingTensor(file: source.sourcePath, tensor: prefix + name)
        }
        guard actual == shape else {
            throw ModelError.shapeMismatch(file: source.sourcePath, tensor: prefix + name, expected: shape, actual: actual)
        }
        let count = shape.reduce(1, *)
        precondition(used + count <= parameters.count, "BertModel.parameterCount is wrong")  // programmer error
        plan.append((name, shape, used, count))
        defer { used += count }
        return UnsafePointer(parameters.base + used)
    }

    /// Copies every bound tensor into its view.
    func load() throws -> BertParameters {
        precondition(used == parameters.count, "BertModel.parameterCount is wrong")
        for entry in plan {
            try source.copyFloats(prefix + entry.name,
                                  into: UnsafeMutableBufferPointer(start: parameters.base + entry.offset, count: entry.count))
        }
        return parameters
    }
}
