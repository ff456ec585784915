// One tensor's entry in a GGUF header, validated: shape within limits, size computed
// without overflow, data range aligned, inside the file and disjoint from the others.

public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// GGUF `ne` order: `shape[0]` is the innermost dimension (the row length). A matrix
    /// with `shape == [in, out]` is row-major `[out][in]`.
    public let shape: [Int]
    public let type: GGMLType
    /// Absolute byte offset of the data in the file.
    public let offset: Int
    public let byteCount: Int
    public let elementCount: Int

    public init(name: String, shape: [Int], type: GGMLType, offset: Int, byteCount: Int, elementCount: Int) {
        self.name = name
        self.shape = shape
        self.type = type
        self.offset = offset
        self.byteCount = byteCount
        self.elementCount = elementCount
    }

    /// Elements per row (`shape[0]`, or 1 for a 0-d tensor).
    public var rowLength: Int { shape.first ?? 1 }
    /// Number of rows (product of `shape[1...]`).
    public var rowCount: Int { rowLength == 0 ? 0 : elementCount / rowLength }
    /// Bytes per row of the stored type.
    public var rowByteCount: Int { rowLength / type.blockSize * type.bytesPerBlock }
    /// The shape outermost first (`[out, in]` for a matrix), as numpy/PyTorch print it.
    public var rowMajorShape: [Int] { shape.reversed() }
}

/// Caps on header fields. A field beyond its cap is refused before anything is allocated;
/// the defaults are far above any real model and far below what could exhaust memory.
public struct GGUFLimits: Sendable {
    public var maxTensors: Int = 1 << 20
    public var maxKeyValues: Int = 1 << 20
    public var maxKeyLength: Int = 1 << 16
    /// ggml's GGML_MAX_NAME is 64 including the terminating NUL.
    public var maxTensorNameLength: Int = 63
    public var maxStringLength: Int = 1 << 28
    public var maxArrayLength: Int = 1 << 30
    public var maxArrayDepth: Int = 4
    /// ggml's GGML_MAX_DIMS.
    public var maxDimensions: Int = 4

    public init() {}
}
