// A safetensors file (https://github.com/huggingface/safetensors, "Format"): u64 LE header
// length N, N bytes of JSON `{name: {dtype, shape, data_offsets: [begin, end]}, ...,
// "__metadata__": {str: str}}`, then the data section; offsets are relative to it.
// Validated like the GGUF reader: header length capped and inside the file, JSON parsed by
// Foundation, duplicate names found by a scan of the raw header (JSONSerialization would
// silently keep one), unknown dtypes, negative or overflowing dims, shape × dtype size
// against the byte range, ranges inside the data section and disjoint.
import Foundation

/// Element types of safetensors, with their sizes.
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case bool = "BOOL", u8 = "U8", i8 = "I8", f8e5m2 = "F8_E5M2", f8e4m3 = "F8_E4M3"
    case i16 = "I16", u16 = "U16", f16 = "F16", bf16 = "BF16"
    case i32 = "I32", u32 = "U32", f32 = "F32"
    case f64 = "F64", i64 = "I64", u64 = "U64"

    public var size: Int {
        switch self {
        case .bool, .u8, .i8, .f8e5m2, .f8e4m3: return 1
        case .i16, .u16, .f16, .bf16: return 2
        case .i32, .u32, .f32: return 4
        case .f64, .i64, .u64: return 8
        }
    }
}

public struct SafetensorsTensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: SafetensorsDType
    /// Outermost first, as PyTorch: a Linear weight is `[out, in]`, row-major.
    public let shape: [Int]
    /// Absolute byte range in the file.
    public let byteRange: Range<Int>
    public var elementCount: Int { shape.reduce(1, *) }
}

public final class SafetensorsFile: @unchecked Sendable {
    public let path: String
    public let tensors: [String: SafetensorsTensorInfo]
    /// Tensor names in data order.
    public let names: [String]
    /// The `__metadata__` map (empty when absent).
    public let metadata: [String: String]
    /// Absolute offset of the data section (8 + header length).
    public let dataOffset: Int
    public let file: MappedFile

    /// The safetensors reference implementation's cap on the header length.
    public static let maxHeaderLength = 100_000_000

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        self.file = file
        let filePath = file.path
        path = filePath
        var r = ByteReader(file.bytes, path: filePath)
        r.context = "header length"
        let n = try r.u64()
        guard n <= UInt64(Self.maxHeaderLength) else {
            throw WeightFormatError.limitExceeded(path: filePath, what: "header length", offset: 0,
                                                  limit: Self.maxHeaderLength, actual: n)
        }
        r.context = "JSON header"
        let header = try r.take(Int(n))
        dataOffset = r.offset
        let dataSize = file.bytes.count - dataOffset

        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(header), options: [])
        } catch {
            throw WeightFormatError.invalidHeader(path: filePath, tensor: "", reason: "invalid JSON (\(error.localizedDescription))")
        }
        guard let dict = object as? [String: Any] else {
            throw WeightFormatError.invalidHeader(path: filePath, tensor: "", reason: "the JSON header is not an object")
        }
        if let dup = Self.duplicateTopLevelKey(header) {
            throw WeightFormatError.duplicateTensor(path: filePath, tensor: dup.name, offset: 8 + dup.offset)
        }

        var meta: [String: String] = [:]
        var infos: [String: SafetensorsTensorInfo] = [:]
        var relative: [(name: String, range: Range<Int>)] = []
        for (name, value) in dict {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else {
                    throw WeightFormatError.invalidHeader(path: filePath, tensor: name, reason: "must be an object of strings")
                }
                for (k, v) in m {
                    guard let s = v as? String else {
                        throw WeightFormatError.invalidHeader(path: filePath, tensor: name, reason: "value of '\(k)' is not a string")
                    }
                    meta[k] = s
                }
                continue
            }
            func bad(_ reason: String) -> WeightFormatError { .invalidHeader(path: filePath, tensor: name, reason: reason) }
            guard let entry = value as? [String: Any] else { throw bad("entry is not an object") }
            guard let dtypeName = entry["dtype"] as? String else { throw bad("missing or non-string 'dtype'") }
            guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
                throw WeightFormatError.unsupportedType(path: filePath, tensor: name, type: dtypeName,
                                                        hint: "known dtypes: " + SafetensorsDType.allCases.map(\.rawValue).joined(separator: ", "))
            }
            guard let shapeAny = entry["shape"] as? [Any] else { throw bad("missing or non-array 'shape'") }
            var shape: [Int] = []
            for d in shapeAny {
                guard let i = Self.exactInt(d), i >= 0 else { throw bad("shape \(shapeAny) has a dimension that is not a non-negative integer") }
                shape.append(i)
            }
            guard let offs = entry["data_offsets"] as? [Any], offs.count == 2,
                  let begin = Self.exactInt(offs[0]), let end = Self.exactInt(offs[1]), begin >= 0, begin <= end else {
                throw bad("'data_offsets' must be two non-negative integers [begin, end] with begin ≤ end")
            }
            var bytes = dtype.size
            for d in shape {
                let (p, o) = bytes.multipliedReportingOverflow(by: d)
                guard !o else {
                    throw WeightFormatError.sizeOverflow(path: filePath, tensor: name, shape: shape.map { Int64($0) }, type: dtypeName)
                }
                bytes = p
            }
            guard bytes == end - begin else {
                throw bad("shape \(shape) of \(dtypeName) takes \(bytes) bytes, but data_offsets [\(begin), \(end)] span \(end - begin)")
            }
            guard end <= dataSize else {
                throw WeightFormatError.outOfFile(path: filePath, tensor: name, start: dataOffset + begin,
                                                  end: dataOffset + end, limit: file.bytes.count)
            }
            infos[name] = SafetensorsTensorInfo(name: name, dtype: dtype, shape: shape,
                                                byteRange: (dataOffset + begin)..<(dataOffset + end))
            relative.append((name, begin..<end))
        }
        // In order of begin, each non-empty range must start at or after the furthest end
        // so far (a running maximum: an empty range in between cannot hide an overlap).
        relative.sort { ($0.range.lowerBound, $0.range.upperBound) < ($1.range.lowerBound, $1.range.upperBound) }
        var furthest = 0, furthestName = ""
        for (name, range) in relative where !range.isEmpty {
            if range.lowerBound < furthest {
                throw WeightFormatError.overlap(path: filePath, tensor: name, other: furthestName,
                                                offset: dataOffset + range.lowerBound)
            }
            furthest = range.upperBound
            furthestName = name
        }
        tensors = infos
        names = relative.map(\.name)
        metadata = meta
    }

    /// The tensor named `name`, or `.missingTensor`.
    public func info(_ name: String) throws -> SafetensorsTensorInfo {
        guard let t = tensors[name] else { throw WeightFormatError.missingTensor(path: path, tensor: name) }
        return t
    }

    /// The tensor's raw bytes: a view into the mapping, valid while this file lives.
    public func data(_ name: String) throws -> UnsafeRawBufferPointer {
        let t = try info(name)
        return UnsafeRawBufferPointer(rebasing: file.bytes[t.byteRange])
    }

    /// An F32 tensor as Floats in place (no copy), valid while this file lives; nil when the
    /// tensor is not F32 or its data is not 4-byte aligned in memory (then use `floats`).
    public func floatView(_ name: String) throws -> UnsafeBufferPointer<Float>? {
        let t = try info(name)
        guard t.dtype == .f32, let base = file.bytes.baseAddress,
              Int(bitPattern: base + t.byteRange.lowerBound) % MemoryLayout<Float>.alignment == 0 else { return nil }
        let raw = UnsafeRawBufferPointer(rebasing: file.bytes[t.byteRange])
        return raw.bindMemory(to: Float.self)
    }

    /// The tensor as Float, row-major (F32 copied; F16, BF16 and F64 converted).
    public func floats(_ name: String) throws -> [Float] {
        let t = try info(name)
        let raw = UnsafeRawBufferPointer(rebasing: file.bytes[t.byteRange])
        let n = t.elementCount
        return try [Float](unsafeUninitializedCapacity: n) { buf, count in
            switch t.dtype {
            case .f32:
                #if _endian(little)
                if n > 0 { UnsafeMutableRawPointer(buf.baseAddress!).copyMemory(from: raw.baseAddress!, byteCount: 4 * n) }
                #else
                for i in 0..<n { buf[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
                #endif
            case .f16: for i in 0..<n { buf[i] = halfToFloat(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
            case .bf16: for i in 0..<n { buf[i] = bf16ToFloat(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
            case .f64: for i in 0..<n { buf[i] = Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
            default:
                throw WeightFormatError.unsupportedType(path: path, tensor: name, type: t.dtype.rawValue,
                                                        hint: "floats() converts F32, F16, BF16 and F64")
            }
            count = n
        }
    }

    /// The tensor as Int (I64, I32, I16, I8, U8, U16, U32, BOOL), e.g. BERT's position_ids.
    public func ints(_ name: String) throws -> [Int] {
        let t = try info(name)
        let raw = UnsafeRawBufferPointer(rebasing: file.bytes[t.byteRange])
        func read<T: FixedWidthInteger>(_: T.Type) -> [Int] {
            (0..<t.elementCount).map { Int(T(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self))) }
        }
        switch t.dtype {
        case .i64: return read(Int64.self)
        case .i32: return read(Int32.self)
        case .u32: return read(UInt32.self)
        case .i16: return read(Int16.self)
        case .u16: return read(UInt16.self)
        case .i8: return read(Int8.self)
        case .u8, .bool: return read(UInt8.self)
        default:
            throw WeightFormatError.unsupportedType(path: path, tensor: name, type: t.dtype.rawValue,
                                                    hint: "ints() converts integer dtypes up to 64 bits (not U64)")
        }
    }

    /// A JSON number that is an integer representable as Int (not 1.5, not 1e30, not a bool).
    static func exactInt(_ any: Any) -> Int? {
        // swift-corelibs-foundation: JSON integers are NSNumbers of objCType i/q (Q when
        // above Int64.max), floats are d, and true/false are NSNumbers of type c.
        guard let n = any as? NSNumber else { return nil }
        let kind = String(cString: n.objCType)
        guard ["i", "q", "l", "s", "I", "L", "S"].contains(kind), let i = any as? Int, n.stringValue == String(i) else { return nil }
        return i
    }
}
