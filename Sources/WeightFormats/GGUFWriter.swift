// Writes GGUF v3 files (v2 on request): metadata of every value type and tensors of the
// quantizable types, each tensor's data aligned and padded to `general.alignment` as
// llama.cpp's gguf_write_to_buf does (the last tensor too). Meant for tests and tools,
// e.g. building tiny random Llama models:
//
//     var w = GGUFWriter()
//     w.set("general.architecture", .string("llama"))
//     try w.addTensor(name: "output_norm.weight", shape: [64], type: .f32, values: norm)
//     try w.write(to: path)
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public struct GGUFWriter: Sendable {
    /// A tensor waiting to be written: its encoded bytes.
    public struct Tensor: Sendable {
        public let name: String
        public let shape: [Int]
        public let type: GGMLType
        public let bytes: [UInt8]
    }

    public private(set) var metadataKeys: [String] = []
    public private(set) var metadata: [String: GGUFValue] = [:]
    public private(set) var tensors: [Tensor] = []
    /// 3 by default; 2 writes the same layout with version 2.
    public var version: UInt32 = 3

    public init() {}

    /// Data alignment: `general.alignment` when set, else 32. Setting it sets the key.
    public var alignment: Int {
        get { metadata["general.alignment"]?.intValue ?? GGUFFile.defaultAlignment }
        set { set("general.alignment", .uint32(UInt32(truncatingIfNeeded: newValue))) }
    }

    /// Sets a metadata value; a key set again keeps its first position.
    public mutating func set(_ key: String, _ value: GGUFValue) {
        if metadata.updateValue(value, forKey: key) == nil { metadataKeys.append(key) }
    }

    public mutating func set(_ key: String, _ value: String) { set(key, .string(value)) }
    public mutating func set(_ key: String, _ value: Bool) { set(key, .bool(value)) }
    /// Integers are written as uint32 when they fit (llama.cpp's convention for
    /// hyper-parameters), else int32 or int64.
    public mutating func set(_ key: String, _ value: Int) {
        if let u = UInt32(exactly: value) { set(key, .uint32(u)) }
        else if let i = Int32(exactly: value) { set(key, .int32(i)) }
        else { set(key, .int64(Int64(value))) }
    }
    public mutating func set(_ key: String, _ value: Float) { set(key, .float32(value)) }
    public mutating func set(_ key: String, _ value: [String]) { set(key, .array(.string(value))) }
    public mutating func set(_ key: String, _ value: [Float]) { set(key, .array(.float32(value))) }
    public mutating func set(_ key: String, _ value: [Int32]) { set(key, .array(.int32(value))) }

    public mutating func remove(_ key: String) {
        if metadata.removeValue(forKey: key) != nil { metadataKeys.removeAll { $0 == key } }
    }

    /// Adds a tensor from Float values (row-major, `shape[0]` innermost, GGUF order),
    /// quantized to `type` with the reference quantizers.
    public mutating func addTensor(name: String, shape: [Int], type: GGMLType, values: [Float]) throws {
        try check(name: name, shape: shape, type: type, count: values.count)
        tensors.append(Tensor(name: name, shape: shape, type: type, bytes: try quantize(type, values)))
    }

    /// Adds a tensor from already encoded bytes (any type, e.g. copied from another file).
    public mutating func addTensor(name: String, shape: [Int], type: GGMLType, bytes: [UInt8]) throws {
        let n = shape.reduce(1, *)
        try check(name: name, shape: shape, type: type, count: n)
        guard bytes.count == type.byteCount(elements: n) else {
            throw WeightFormatError.invalidArgument("tensor '\(name)': \(bytes.count) bytes given, \(type.name) \(shape) takes \(type.byteCount(elements: n) ?? -1)")
        }
        tensors.append(Tensor(name: name, shape: shape, type: type, bytes: bytes))
    }

    private func check(name: String, shape: [Int], type: GGMLType, count: Int) throws {
        func bad(_ why: String) -> WeightFormatError { .invalidArgument("tensor '\(name)': \(why)") }
        guard name.utf8.count <= GGUFLimits().maxTensorNameLength else { throw bad("name longer than 63 bytes") }
        guard !tensors.contains(where: { $0.name == name }) else { throw bad("added twice") }
        guard shape.count <= 4, shape.allSatisfy({ $0 >= 0 }) else { throw bad("shape \(shape) needs 0-4 non-negative dimensions") }
        guard (shape.first ?? 1) % type.blockSize == 0 else {
            throw bad("row length \(shape.first ?? 1) is not a multiple of the \(type.name) block size \(type.blockSize)")
        }
        guard shape.reduce(1, *) == count else { throw bad("shape \(shape) holds \(shape.reduce(1, *)) values, \(count) given") }
    }

    /// The whole file.
    public func serialized() throws -> [UInt8] {
        guard case let .uint32(a) = metadata["general.alignment"] ?? .uint32(32), a > 0, a & (a - 1) == 0 else {
            throw WeightFormatError.invalidArgument("general.alignment must be a uint32 power of two")
        }
        let align = Int(a)
        var out = [UInt8]()
        out.reserveCapacity(tensors.reduce(4096) { $0 + $1.bytes.count + align })
        out.append(contentsOf: Array("GGUF".utf8))
        out.appendLE(version)
        out.appendLE(UInt64(tensors.count))
        out.appendLE(UInt64(metadataKeys.count))
        for key in metadataKeys {
            out.appendGGUFString(key)
            let v = metadata[key]!
            out.appendLE(v.type.rawValue)
            out.appendGGUFValue(v)
        }
        var offset = 0
        for t in tensors {
            out.appendGGUFString(t.name)
            out.appendLE(UInt32(t.shape.count))
            for d in t.shape { out.appendLE(UInt64(d)) }
            out.appendLE(t.type.rawValue)
            out.appendLE(UInt64(offset))
            offset += (t.bytes.count + align - 1) / align * align
        }
        out.padToMultiple(of: align)
        for t in tensors {
            out.append(contentsOf: t.bytes)
            out.padToMultiple(of: align)
        }
        return out
    }

    /// Writes the file: a temporary file next to `path`, written fully, fsync'ed, then
    /// renamed over `path`, so a reader never sees half a file. Errors name the path, the
    /// system call and errno.
    public func write(to path: String) throws {
        let bytes = try serialized()
        let tmp = path + ".tmp-\(getpid())"
        var fd: Int32
        repeat { fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) } while fd < 0 && errno == EINTR
        guard fd >= 0 else { throw WeightFormatError.io(path: tmp, operation: "open", errno: errno) }
        var renamed = false
        defer { if !renamed { unlink(tmp) } }
        func fail(_ operation: String) -> WeightFormatError {
            let e = errno
            close(fd)
            return .io(path: tmp, operation: operation, errno: e)
        }
        var done = 0
        try bytes.withUnsafeBytes { buf in
            while done < buf.count {
                let n = systemWrite(fd, buf.baseAddress! + done, buf.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw fail("write")
                }
                done += n
            }
        }
        guard fsync(fd) == 0 else { throw fail("fsync") }
        guard close(fd) == 0 else { throw WeightFormatError.io(path: tmp, operation: "close", errno: errno) }
        guard rename(tmp, path) == 0 else { throw WeightFormatError.io(path: path, operation: "rename", errno: errno) }
        renamed = true
    }
}

/// `write(2)` (named apart from `GGUFWriter.write(to:)`, which would shadow it).
private func systemWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }

/// Little-endian GGUF encoding onto a byte array (public for tools and for tests that build damaged files).
extension [UInt8] {
    public mutating func appendLE<T: FixedWidthInteger>(_ v: T) {
        Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) }
    }

    public mutating func appendGGUFString(_ s: String) {
        appendLE(UInt64(s.utf8.count))
        append(contentsOf: s.utf8)
    }

    public mutating func padToMultiple(of a: Int) {
        let r = count % a
        if r != 0 { append(contentsOf: repeatElement(0, count: a - r)) }
    }

    public mutating func appendGGUFValue(_ v: GGUFValue) {
        switch v {
        case let .uint8(x): appendLE(x)
        case let .int8(x): appendLE(x)
        case let .uint16(x): appendLE(x)
        case let .int16(x): appendLE(x)
        case let .uint32(x): appendLE(x)
        case let .int32(x): appendLE(x)
        case let .uint64(x): appendLE(x)
        case let .int64(x): appendLE(x)
        case let .float32(x): appendLE(x.bitPattern)
        case let .float64(x): appendLE(x.bitPattern)
        case let .bool(x): append(x ? 1 : 0)
        case let .string(x): appendGGUFString(x)
        case let .array(a): appendGGUFArray(a)
        }
    }

    public mutating func appendGGUFArray(_ a: GGUFArray) {
        appendLE(a.elementType.rawValue)
        appendLE(UInt64(a.count))
        switch a {
        case let .uint8(xs): append(contentsOf: xs)
        case let .int8(xs): for x in xs { appendLE(x) }
        case let .uint16(xs): for x in xs { appendLE(x) }
        case let .int16(xs): for x in xs { appendLE(x) }
        case let .uint32(xs): for x in xs { appendLE(x) }
        case let .int32(xs): for x in xs { appendLE(x) }
        case let .uint64(xs): for x in xs { appendLE(x) }
        case let .int64(xs): for x in xs { appendLE(x) }
        case let .float32(xs): for x in xs { appendLE(x.bitPattern) }
        case let .float64(xs): for x in xs { appendLE(x.bitPattern) }
        case let .bool(xs): for x in xs { append(x ? 1 : 0) }
        case let .string(xs): for x in xs { appendGGUFString(x) }
        case let .array(xs): for x in xs { appendGGUFArray(x) }
        }
    }
}
