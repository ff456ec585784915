// The one bounds-checked little-endian reader through which every header byte of a weight
// file is read. Every read checks the remaining length first and throws `.truncated` with
// the offset where the read started, so a hostile or cut file can never make us read past
// the mapping.

public struct ByteReader {
    /// The bytes being read (typically a whole mapped file).
    public let bytes: UnsafeRawBufferPointer
    /// The offset of the next read, from the start of `bytes`.
    public private(set) var offset: Int
    /// Names the file in errors.
    public var path: String
    /// What is being read right now ("tensor count", "key 'general.name'"), for errors.
    public var context: String = ""

    public init(_ bytes: UnsafeRawBufferPointer, offset: Int = 0, path: String = "<memory>") {
        self.bytes = bytes
        self.offset = offset
        self.path = path
    }

    /// Bytes left after `offset`.
    @inlinable public var remaining: Int { bytes.count - offset }

    /// Throws `.truncated` unless `n` more bytes are available.
    @inline(__always)
    public func need(_ n: Int) throws {
        guard n >= 0, n <= bytes.count - offset else {
            throw WeightFormatError.truncated(path: path, offset: offset, needed: n,
                                              available: max(0, bytes.count - offset), context: context)
        }
    }

    @inline(__always)
    mutating func load<T: FixedWidthInteger>(_: T.Type) throws -> T {
        try need(MemoryLayout<T>.size)
        let v = bytes.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
        return T(littleEndian: v)
    }

    public mutating func u8() throws -> UInt8 { try load(UInt8.self) }
    public mutating func u16() throws -> UInt16 { try load(UInt16.self) }
    public mutating func u32() throws -> UInt32 { try load(UInt32.self) }
    public mutating func u64() throws -> UInt64 { try load(UInt64.self) }
    public mutating func i8() throws -> Int8 { try load(Int8.self) }
    public mutating func i16() throws -> Int16 { try load(Int16.self) }
    public mutating func i32() throws -> Int32 { try load(Int32.self) }
    public mutating func i64() throws -> Int64 { try load(Int64.self) }
    public mutating func f32() throws -> Float { Float(bitPattern: try load(UInt32.self)) }
    public mutating func f64() throws -> Double { Double(bitPattern: try load(UInt64.self)) }

    /// A GGUF bool: one byte that must be 0 or 1.
    public mutating func bool() throws -> Bool {
        let at = offset
        let b = try u8()
        guard b <= 1 else { throw WeightFormatError.invalidBool(path: path, key: context, offset: at, actual: b) }
        return b == 1
    }

    /// A view of the next `n` bytes (no copy).
    public mutating func take(_ n: Int) throws -> UnsafeRawBufferPointer {
        try need(n)
        let v = UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + n])
        offset += n
        return v
    }

    /// Skips `n` bytes.
    public mutating func skip(_ n: Int) throws {
        try need(n)
        offset += n
    }

    /// Moves to an absolute offset within (or at the end of) `bytes`.
    public mutating func seek(to newOffset: Int) throws {
        guard newOffset >= 0, newOffset <= bytes.count else {
            throw WeightFormatError.truncated(path: path, offset: newOffset, needed: 0,
                                              available: 0, context: context)
        }
        offset = newOffset
    }

    /// A GGUF string: u64 byte length, then that many bytes. Lengths above `maxLength`
    /// throw `.limitExceeded` before anything is allocated. With `strict`, invalid UTF-8
    /// throws; otherwise it is repaired with U+FFFD (token pieces are kept readable).
    public mutating func string(maxLength: Int, strict: Bool = false) throws -> String {
        let at = offset
        let n = try u64()
        guard n <= UInt64(maxLength) else {
            throw WeightFormatError.limitExceeded(path: path, what: "string length" + (context.isEmpty ? "" : " (\(context))"),
                                                  offset: at, limit: maxLength, actual: n)
        }
        let raw = try take(Int(n))
        let utf8 = raw.bindMemory(to: UInt8.self)
        if strict {
            guard let s = String(validating: utf8, as: UTF8.self) else {
                throw WeightFormatError.invalidUTF8(path: path, offset: at, context: context.isEmpty ? "string" : context)
            }
            return s
        }
        return String(decoding: utf8, as: UTF8.self)
    }
}
