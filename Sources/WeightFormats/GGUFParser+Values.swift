// Reading GGUF metadata values. Array lengths are checked against the bytes left in the
// file before anything is reserved; numeric arrays are copied in bulk, so parsing the
// 49,152-entry vocabulary and its token types takes milliseconds.

extension GGUFParser {
    mutating func value(_ type: GGUFValueType, key: String, depth: Int) throws -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try r.u8())
        case .int8: return .int8(try r.i8())
        case .uint16: return .uint16(try r.u16())
        case .int16: return .int16(try r.i16())
        case .uint32: return .uint32(try r.u32())
        case .int32: return .int32(try r.i32())
        case .uint64: return .uint64(try r.u64())
        case .int64: return .int64(try r.i64())
        case .float32: return .float32(try r.f32())
        case .float64: return .float64(try r.f64())
        case .bool:
            let at = r.offset
            let b = try r.u8()
            guard b <= 1 else { throw WeightFormatError.invalidBool(path: path, key: key, offset: at, actual: b) }
            return .bool(b == 1)
        case .string: return .string(try r.string(maxLength: limits.maxStringLength))
        case .array: return .array(try array(key: key, depth: depth + 1))
        }
    }

    /// u32 element type, u64 count, then the elements.
    mutating func array(key: String, depth: Int) throws -> GGUFArray {
        let typeAt = r.offset
        let rawType = try r.u32()
        guard let type = GGUFValueType(rawValue: rawType), !(type == .array && depth >= limits.maxArrayDepth) else {
            throw WeightFormatError.invalidValueType(path: path, key: key, offset: typeAt, actual: rawType)
        }
        let countAt = r.offset
        let n64 = try r.u64()
        let cap = min(limits.maxArrayLength, r.remaining / type.minimumSize)
        guard n64 <= UInt64(cap) else {
            throw WeightFormatError.limitExceeded(path: path, what: "array length of '\(key)'", offset: countAt,
                                                  limit: cap, actual: n64)
        }
        let n = Int(n64)
        switch type {
        case .uint8: return .uint8(try bulk(n, UInt8.self))
        case .int8: return .int8(try bulk(n, Int8.self))
        case .uint16: return .uint16(try bulk(n, UInt16.self))
        case .int16: return .int16(try bulk(n, Int16.self))
        case .uint32: return .uint32(try bulk(n, UInt32.self))
        case .int32: return .int32(try bulk(n, Int32.self))
        case .uint64: return .uint64(try bulk(n, UInt64.self))
        case .int64: return .int64(try bulk(n, Int64.self))
        case .float32: return .float32(try bulk(n, UInt32.self).map { Float(bitPattern: $0) })
        case .float64: return .float64(try bulk(n, UInt64.self).map { Double(bitPattern: $0) })
        case .bool:
            let raw = try bulk(n, UInt8.self)
            if let i = raw.firstIndex(where: { $0 > 1 }) {
                throw WeightFormatError.invalidBool(path: path, key: key, offset: r.offset - n + i, actual: raw[i])
            }
            return .bool(raw.map { $0 == 1 })
        case .string:
            var out = [String]()
            out.reserveCapacity(n)
            for _ in 0..<n { out.append(try r.string(maxLength: limits.maxStringLength)) }
            return .string(out)
        case .array:
            var out = [GGUFArray]()
            out.reserveCapacity(n)
            for _ in 0..<n { out.append(try array(key: key, depth: depth + 1)) }
            return .array(out)
        }
    }

    /// `n` little-endian integers copied out of the file in one bounds check.
    mutating func bulk<T: FixedWidthInteger>(_ n: Int, _: T.Type) throws -> [T] {
        let size = MemoryLayout<T>.size
        let raw = try r.take(n * size)
        return [T](unsafeUninitializedCapacity: n) { buf, initialized in
            for i in 0..<n { buf[i] = T(littleEndian: raw.loadUnaligned(fromByteOffset: i * size, as: T.self)) }
            initialized = n
        }
    }
}
