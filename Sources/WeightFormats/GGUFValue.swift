// GGUF metadata values: the 13 value types of the GGUF spec
// (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md). Arrays keep their element
// type and are stored as typed Swift arrays (one `[String]` rather than 49,152 enum
// boxes), which keeps parsing the vocabulary fast and reading it back convenient.

/// GGUF value type ids (`enum gguf_type`).
public enum GGUFValueType: UInt32, Sendable, CaseIterable {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6
    case bool = 7, string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    /// Encoded size of a scalar of this type (strings and arrays: their minimal size).
    public var minimumSize: Int {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16: return 2
        case .uint32, .int32, .float32: return 4
        case .uint64, .int64, .float64: return 8
        case .string: return 8   // u64 length
        case .array: return 12   // u32 type + u64 count
        }
    }

    public var name: String { "\(self)" }
}

/// One metadata value.
public enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16)
    case uint32(UInt32), int32(Int32), uint64(UInt64), int64(Int64)
    case float32(Float), float64(Double)
    case bool(Bool)
    case string(String)
    case array(GGUFArray)

    public var type: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .uint64: return .uint64
        case .int64: return .int64
        case .float32: return .float32
        case .float64: return .float64
        case .bool: return .bool
        case .string: return .string
        case .array: return .array
        }
    }

    /// "uint32", "array of string", ... for error messages.
    public var typeName: String {
        if case let .array(a) = self { return "array of \(a.elementType.name)" }
        return type.name
    }

    /// The value of any integer type, if it fits in `Int`.
    public var intValue: Int? {
        switch self {
        case let .uint8(v): return Int(v)
        case let .int8(v): return Int(v)
        case let .uint16(v): return Int(v)
        case let .int16(v): return Int(v)
        case let .uint32(v): return Int(v)
        case let .int32(v): return Int(v)
        case let .uint64(v): return Int(exactly: v)
        case let .int64(v): return Int(exactly: v)
        default: return nil
        }
    }

    /// The value of a float type (float32 or float64).
    public var doubleValue: Double? {
        switch self {
        case let .float32(v): return Double(v)
        case let .float64(v): return v
        default: return nil
        }
    }

    /// The value of a float32 (exact) or float64 (rounded) value.
    public var floatValue: Float? {
        switch self {
        case let .float32(v): return v
        case let .float64(v): return Float(v)
        default: return nil
        }
    }

    public var boolValue: Bool? { if case let .bool(v) = self { return v } else { return nil } }
    public var stringValue: String? { if case let .string(v) = self { return v } else { return nil } }
    public var arrayValue: GGUFArray? { if case let .array(v) = self { return v } else { return nil } }
}

/// A GGUF array: elements of one type. Nested arrays hold inner arrays that may each have
/// their own element type and length.
public enum GGUFArray: Sendable, Equatable {
    case uint8([UInt8]), int8([Int8]), uint16([UInt16]), int16([Int16])
    case uint32([UInt32]), int32([Int32]), uint64([UInt64]), int64([Int64])
    case float32([Float]), float64([Double])
    case bool([Bool])
    case string([String])
    case array([GGUFArray])

    public var elementType: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .uint64: return .uint64
        case .int64: return .int64
        case .float32: return .float32
        case .float64: return .float64
        case .bool: return .bool
        case .string: return .string
        case .array: return .array
        }
    }

    public var count: Int {
        switch self {
        case let .uint8(a): return a.count
        case let .int8(a): return a.count
        case let .uint16(a): return a.count
        case let .int16(a): return a.count
        case let .uint32(a): return a.count
        case let .int32(a): return a.count
        case let .uint64(a): return a.count
        case let .int64(a): return a.count
        case let .float32(a): return a.count
        case let .float64(a): return a.count
        case let .bool(a): return a.count
        case let .string(a): return a.count
        case let .array(a): return a.count
        }
    }

    /// Elements of any integer type, if all fit in `Int`.
    public var ints: [Int]? {
        func conv<T: BinaryInteger>(_ a: [T]) -> [Int]? {
            var out = [Int]()
            out.reserveCapacity(a.count)
            for v in a { guard let i = Int(exactly: v) else { return nil }; out.append(i) }
            return out
        }
        switch self {
        case let .uint8(a): return conv(a)
        case let .int8(a): return conv(a)
        case let .uint16(a): return conv(a)
        case let .int16(a): return conv(a)
        case let .uint32(a): return conv(a)
        case let .int32(a): return conv(a)
        case let .uint64(a): return conv(a)
        case let .int64(a): return conv(a)
        default: return nil
        }
    }

    /// Elements of a float type, as Float.
    public var floats: [Float]? {
        switch self {
        case let .float32(a): return a
        case let .float64(a): return a.map { Float($0) }
        default: return nil
        }
    }

    public var strings: [String]? { if case let .string(a) = self { return a } else { return nil } }
    public var bools: [Bool]? { if case let .bool(a) = self { return a } else { return nil } }
}

extension GGUFValue: CustomStringConvertible {
    /// Short, readable rendering for messages and inspection: strings quoted, arrays cut
    /// after 8 elements (a vocabulary must not flood an error message).
    public var description: String {
        switch self {
        case let .uint8(v): return "\(v)"
        case let .int8(v): return "\(v)"
        case let .uint16(v): return "\(v)"
        case let .int16(v): return "\(v)"
        case let .uint32(v): return "\(v)"
        case let .int32(v): return "\(v)"
        case let .uint64(v): return "\(v)"
        case let .int64(v): return "\(v)"
        case let .float32(v): return "\(v)"
        case let .float64(v): return "\(v)"
        case let .bool(v): return "\(v)"
        case let .string(v): return quoted(v)
        case let .array(a): return a.description
        }
    }
}

extension GGUFArray: CustomStringConvertible {
    public var description: String {
        let shown = 8
        func render<T>(_ xs: [T], _ f: (T) -> String) -> String {
            let head = xs.prefix(shown).map(f).joined(separator: ", ")
            return "[" + head + (xs.count > shown ? ", … (\(xs.count) \(elementType.name) elements)" : "") + "]"
        }
        switch self {
        case let .uint8(xs): return render(xs) { "\($0)" }
        case let .int8(xs): return render(xs) { "\($0)" }
        case let .uint16(xs): return render(xs) { "\($0)" }
        case let .int16(xs): return render(xs) { "\($0)" }
        case let .uint32(xs): return render(xs) { "\($0)" }
        case let .int32(xs): return render(xs) { "\($0)" }
        case let .uint64(xs): return render(xs) { "\($0)" }
        case let .int64(xs): return render(xs) { "\($0)" }
        case let .float32(xs): return render(xs) { "\($0)" }
        case let .float64(xs): return render(xs) { "\($0)" }
        case let .bool(xs): return render(xs) { "\($0)" }
        case let .string(xs): return render(xs, quoted)
        case let .array(xs): return render(xs) { $0.description }
        }
    }
}

/// A string in double quotes, cut after 80 characters.
private func quoted(_ s: String) -> String {
    let cut = s.count > 80 ? String(s.prefix(80)) + "…" : s
    return "\"" + cut.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\\n") + "\""
}
