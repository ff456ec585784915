// A GGUF (v2, v3) file: parsed and validated header, metadata and tensor directory over a
// read-only mapping. Follows llama.cpp `ggml/src/gguf.cpp` (gguf_init_from_file_impl) in
// treating the file as hostile: every read is bounds-checked, counts and lengths are
// capped before allocation, sizes are overflow-checked, duplicates, misaligned and
// overlapping data are refused. Binding tensors to a model (names, shapes) is the
// model's job, not this file's.
//
// Layout: "GGUF" u32 version, u64 n_tensors, u64 n_kv, n_kv × (string key, u32 type,
// value), n_tensors × (string name, u32 n_dims, n_dims × u64 ne, u32 type, u64 offset),
// padding to `general.alignment` (default 32), tensor data (offsets relative to here).

public final class GGUFFile: @unchecked Sendable {
    public let path: String
    public let version: UInt32
    public let alignment: Int
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    /// Tensors in file (directory) order.
    public let tensors: [GGUFTensorInfo]
    /// Absolute offset of the data section.
    public let dataOffset: Int
    /// The mapping the tensor data views point into.
    public let file: MappedFile

    private let tensorIndex: [String: Int]

    public static let defaultAlignment = 32

    /// Maps and parses the file at `path`.
    public convenience init(path: String, limits: GGUFLimits = GGUFLimits()) throws {
        try self.init(file: MappedFile(path: path), limits: limits)
    }

    /// Parses an already mapped (or in-memory) file.
    public init(file: MappedFile, limits: GGUFLimits = GGUFLimits()) throws {
        self.file = file
        self.path = file.path
        var p = GGUFParser(file: file, limits: limits)
        let h = try p.parse()
        version = h.version
        alignment = h.alignment
        metadata = h.metadata
        metadataKeys = h.keys
        tensors = h.tensors
        dataOffset = h.dataOffset
        var index = [String: Int](minimumCapacity: h.tensors.count)
        for (i, t) in h.tensors.enumerated() { index[t.name] = i }
        tensorIndex = index
    }

    /// The tensor named `name`, if present.
    public func tensor(_ name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The tensor named `name`, or `.missingTensor`.
    public func requireTensor(_ name: String) throws -> GGUFTensorInfo {
        guard let t = tensor(name) else { throw WeightFormatError.missingTensor(path: path, tensor: name) }
        return t
    }

    /// The tensor's raw bytes: a view into the mapping, valid while this GGUFFile lives.
    public func data(_ t: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        precondition(t.offset >= 0 && t.byteCount >= 0 && t.offset + t.byteCount <= file.bytes.count,
                     "tensor '\(t.name)' does not belong to \(path)")
        return UnsafeRawBufferPointer(rebasing: file.bytes[t.offset..<t.offset + t.byteCount])
    }
}

/// The parse phase, kept apart from GGUFFile so that the file's properties can stay `let`.
struct GGUFParser {
    struct Header {
        var version: UInt32 = 0
        var alignment = GGUFFile.defaultAlignment
        var metadata: [String: GGUFValue] = [:]
        var keys: [String] = []
        var tensors: [GGUFTensorInfo] = []
        var dataOffset = 0
    }

    var r: ByteReader
    let limits: GGUFLimits
    let path: String

    init(file: MappedFile, limits: GGUFLimits) {
        r = ByteReader(file.bytes, path: file.path)
        self.limits = limits
        path = file.path
    }

    mutating func parse() throws -> Header {
        var h = Header()
        r.context = "magic"
        let magic = try r.take(4)
        guard magic.elementsEqual("GGUF".utf8) else {
            let shown = magic.map { $0 >= 32 && $0 < 127 ? String(UnicodeScalar($0)) : "\\x" + String($0, radix: 16) }
            throw WeightFormatError.badMagic(path: path, expected: "GGUF", actual: "\"" + shown.joined() + "\"")
        }
        r.context = "version"
        h.version = try r.u32()
        guard h.version == 2 || h.version == 3 else {
            let hint: String
            if h.version == 1 { hint = "GGUF v1 is obsolete: reconvert the model with a current llama.cpp" }
            else if h.version & 0xFFFF == 0 { hint = "the file looks big-endian; only little-endian files are read" }
            else { hint = "versions 2 and 3 are supported" }
            throw WeightFormatError.unsupportedVersion(path: path, version: h.version, hint: hint)
        }

        // Counts are checked against the caps and against what the rest of the file could
        // hold (each entry takes a minimum number of bytes) before anything is reserved.
        r.context = "tensor count"
        let nTensors = try count(limit: limits.maxTensors, minimumEntrySize: 8 + 4 + 4 + 8, what: "tensor count")
        r.context = "metadata count"
        let nKV = try count(limit: limits.maxKeyValues, minimumEntrySize: 8 + 4 + 1, what: "metadata key/value count")

        h.keys.reserveCapacity(nKV)
        h.metadata.reserveCapacity(nKV)
        for i in 0..<nKV {
            let keyOffset = r.offset
            r.context = "metadata key \(i)"
            let key = try r.string(maxLength: limits.maxKeyLength, strict: true)
            r.context = "metadata '\(key)'"
            guard h.metadata[key] == nil else { throw WeightFormatError.duplicateKey(path: path, key: key, offset: keyOffset) }
            let typeOffset = r.offset
            let rawType = try r.u32()
            guard let type = GGUFValueType(rawValue: rawType) else {
                throw WeightFormatError.invalidValueType(path: path, key: key, offset: typeOffset, actual: rawType)
            }
            h.metadata[key] = try value(type, key: key, depth: 0)
            h.keys.append(key)
        }

        if let a = h.metadata["general.alignment"] {
            guard case let .uint32(v) = a, v > 0, v & (v - 1) == 0 else {
                throw WeightFormatError.badMetadata(path: path, key: "general.alignment",
                                                    expected: "a uint32 power of two",
                                                    actual: "\(a.typeName) \(a)")
            }
            h.alignment = Int(v)
        }

        // Tensor directory: offsets are relative to the data section, whose start is only
        // known once the whole directory has been read.
        var relative: [(info: GGUFTensorInfo, at: Int)] = []
        relative.reserveCapacity(nTensors)
        var seen = Set<String>(minimumCapacity: nTensors)
        for i in 0..<nTensors {
            let at = r.offset
            r.context = "tensor \(i) name"
            let name = try r.string(maxLength: limits.maxTensorNameLength, strict: true)
            r.context = "tensor '\(name)'"
            guard seen.insert(name).inserted else { throw WeightFormatError.duplicateTensor(path: path, tensor: name, offset: at) }
            relative.append((try tensorInfo(name: name, at: at, alignment: h.alignment), at))
        }

        h.dataOffset = r.offset
        if h.dataOffset % h.alignment != 0 { h.dataOffset += h.alignment - h.dataOffset % h.alignment }
        let fileSize = r.bytes.count
        h.tensors.reserveCapacity(nTensors)
        for (t, _) in relative {
            let (start, o1) = h.dataOffset.addingReportingOverflow(t.offset)
            let (end, o2) = start.addingReportingOverflow(t.byteCount)
            guard !o1, !o2, end <= fileSize else {
                throw WeightFormatError.outOfFile(path: path, tensor: t.name, start: o1 ? Int.max : start,
                                                  end: o1 || o2 ? Int.max : end, limit: fileSize)
            }
            h.tensors.append(GGUFTensorInfo(name: t.name, shape: t.shape, type: t.type, offset: start,
                                            byteCount: t.byteCount, elementCount: t.elementCount))
        }
        // Overlap: in order of start, each non-empty range must begin at or after the
        // furthest end seen so far (a running maximum, so an empty or short tensor in
        // between cannot hide an overlap).
        let order = h.tensors.indices.sorted { h.tensors[$0].offset < h.tensors[$1].offset }
        var furthest = 0, furthestName = ""
        for i in order where h.tensors[i].byteCount > 0 {
            let t = h.tensors[i]
            if t.offset < furthest {
                throw WeightFormatError.overlap(path: path, tensor: t.name, other: furthestName, offset: t.offset)
            }
            furthest = t.offset + t.byteCount
            furthestName = t.name
        }
        return h
    }

    /// A u64 count, capped by `limit` and by how many `minimumEntrySize` entries fit in the
    /// rest of the file.
    mutating func count(limit: Int, minimumEntrySize: Int, what: String) throws -> Int {
        let at = r.offset
        let n = try r.u64()
        let fits = r.remaining / minimumEntrySize
        let cap = min(limit, fits)
        guard n <= UInt64(cap) else {
            throw WeightFormatError.limitExceeded(path: path, what: what + (n <= UInt64(limit) ? " (for the bytes left in the file)" : ""),
                                                  offset: at, limit: cap, actual: n)
        }
        return Int(n)
    }

    /// One tensor directory entry after its name. `offset` in the result is relative.
    mutating func tensorInfo(name: String, at: Int, alignment: Int) throws -> GGUFTensorInfo {
        let dimsAt = r.offset
        let nDims = try r.u32()
        guard nDims <= UInt32(limits.maxDimensions) else {
            throw WeightFormatError.limitExceeded(path: path, what: "dimension count of tensor '\(name)'",
                                                  offset: dimsAt, limit: limits.maxDimensions, actual: UInt64(nDims))
        }
        var raw = [Int64]()
        for _ in 0..<Int(nDims) { raw.append(Int64(bitPattern: try r.u64())) }
        if let bad = raw.first(where: { $0 < 0 }) {
            throw WeightFormatError.invalidShape(path: path, tensor: name, offset: dimsAt, shape: raw,
                                                 reason: "dimension \(bad) is negative")
        }
        let typeAt = r.offset
        let rawType = try r.u32()
        guard let type = GGMLType(rawValue: rawType) else {
            throw WeightFormatError.unknownTensorType(path: path, tensor: name, offset: typeAt, actual: rawType)
        }
        let shape = raw.map { Int($0) }
        var elements = 1
        for d in shape {
            let (n, o) = elements.multipliedReportingOverflow(by: d)
            guard !o else { throw WeightFormatError.sizeOverflow(path: path, tensor: name, shape: raw, type: type.name) }
            elements = n
        }
        let rowLength = shape.first ?? 1
        guard rowLength % type.blockSize == 0 else {
            throw WeightFormatError.shapeNotBlockMultiple(path: path, tensor: name, type: type.name,
                                                          rowLength: rowLength, blockSize: type.blockSize)
        }
        guard let bytes = type.byteCount(elements: elements) else {
            throw WeightFormatError.sizeOverflow(path: path, tensor: name, shape: raw, type: type.name)
        }
        let off = try r.u64()
        guard off <= UInt64(Int.max) else {
            throw WeightFormatError.outOfFile(path: path, tensor: name, start: Int.max, end: Int.max, limit: r.bytes.count)
        }
        guard Int(off) % alignment == 0 else {
            throw WeightFormatError.misaligned(path: path, tensor: name, offset: Int(off), alignment: alignment)
        }
        return GGUFTensorInfo(name: name, shape: shape, type: type, offset: Int(off), byteCount: bytes, elementCount: elements)
    }
}
