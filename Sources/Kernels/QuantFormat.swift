// The GGML block formats the decode kernels read straight from a GGUF file's bytes, with a
// scalar decoder used by the naive twins and to build fp32 copies. The GGUF reader (module
// WeightFormats) owns the file format; this enum only knows how one row's bytes encode numbers.
//
// Layouts (ggml-common.h): Q4_0 block of 32 = fp16 d, 16 bytes (element j < 16 is the low
// nibble of byte j, element j + 16 its high nibble), value d·(q − 8). Q4_1 = fp16 d, fp16 m,
// 16 bytes, value d·q + m. Q8_0 = fp16 d, 32 int8, value d·q.
import Parallelism

public enum QuantFormat: String, Sendable, CaseIterable {
    case f32, f16, bf16, q4_0, q4_1, q8_0
    /// Decode layouts made by `QuantMatrix.packedForDecode()` (see QuantPacking.swift):
    /// Q4_0/Q4_1 rows with nibbles interleaved for 16-lane loads and fp16 d, m after them,
    /// and Q8_0 rows likewise with bytes offset by 128.
    case q4Packed, q8Packed

    /// The formats GGUF files store (the packed ones are derived).
    public static let fileFormats: [QuantFormat] = [.f32, .f16, .bf16, .q4_0, .q4_1, .q8_0]

    /// Elements per block.
    @inlinable public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16: return 1
        case .q4_0, .q4_1, .q8_0, .q4Packed, .q8Packed: return 32
        }
    }

    /// Bytes per block.
    @inlinable public var blockBytes: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        case .q4_0: return 18
        case .q4_1: return 20
        case .q8_0, .q8Packed: return 34
        case .q4Packed: return 20
        }
    }

    /// Bytes of one row of `n` elements (n a multiple of `blockSize`).
    @inlinable public func rowBytes(_ n: Int) -> Int { n / blockSize * blockBytes }

    /// Decodes `n` elements (a multiple of `blockSize`) starting at `src` into `dst`.
    /// - Parameters:
    ///   - dst: [n]
    ///   - src: rowBytes(n) bytes
    public func dequantizeRow(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count n: Int) {
        switch self {
        case .f32:
            for i in 0..<n { dst[i] = src.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) }
        case .f16:
            for i in 0..<n { dst[i] = halfToFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case .bf16:
            for i in 0..<n { dst[i] = Float(bitPattern: UInt32(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16) }
        case .q4_0, .q4_1:
            let bb = blockBytes, hasMin = self == .q4_1
            for b in 0..<n / 32 {
                let blk = src + b * bb
                let d = halfToFloat(blk.loadUnaligned(as: UInt16.self))
                let m = hasMin ? halfToFloat(blk.loadUnaligned(fromByteOffset: 2, as: UInt16.self)) : -8 * d
                let qs = blk + (hasMin ? 4 : 2)
                for j in 0..<16 {
                    let byte = qs.load(fromByteOffset: j, as: UInt8.self)
                    dst[b * 32 + j] = d * Float(byte & 0xF) + m
                    dst[b * 32 + j + 16] = d * Float(byte >> 4) + m
                }
            }
        case .q4Packed:
            for e in 0..<n { dst[e] = packedQ4Value(src, element: e, count: n) }
        case .q8Packed:
            for e in 0..<n { dst[e] = packedQ8Value(src, element: e, count: n) }
        case .q8_0:
            for b in 0..<n / 32 {
                let blk = src + b * 34
                let d = halfToFloat(blk.loadUnaligned(as: UInt16.self))
                for j in 0..<32 { dst[b * 32 + j] = d * Float(blk.load(fromByteOffset: 2 + j, as: Int8.self)) }
            }
        }
    }
}

/// IEEE binary16 bits to Float (exact).
@inlinable
public func halfToFloat(_ bits: UInt16) -> Float { Float(Float16(bitPattern: bits)) }

/// A row-major [rows, cols] matrix whose rows are stored in a `QuantFormat`, viewed in
/// place (typically inside the mmapped GGUF file; whoever creates it keeps the bytes alive).
public struct QuantMatrix: @unchecked Sendable {
    public let format: QuantFormat
    public let rows: Int
    public let cols: Int
    public let data: UnsafeRawPointer
    /// Keeps `data` alive when this matrix owns it (a packed copy); nil for views.
    public let owner: AnyObject?
    public var rowBytes: Int { format.rowBytes(cols) }

    /// - Parameters:
    ///   - data: rows · format.rowBytes(cols) bytes
    public init(format: QuantFormat, rows: Int, cols: Int, data: UnsafeRawPointer, owner: AnyObject? = nil) {
        self.format = format
        self.rows = rows
        self.cols = cols
        self.data = data
        self.owner = owner
    }

    /// Row `r` decoded to fp32.
    /// - Parameters:
    ///   - dst: [cols]
    public func dequantizeRow(_ r: Int, into dst: UnsafeMutablePointer<Float>) {
        format.dequantizeRow(data + r * rowBytes, dst, count: cols)
    }

    /// The whole matrix decoded to fp32, [rows, cols] row-major.
    public func dequantized() -> [Float] {
        var out = [Float](repeating: 0, count: rows * cols)
        out.withUnsafeMutableBufferPointer { p in
            let base = UnsafeSendable(p.baseAddress!)
            parallelRanges(rows, minimum: 64) { r in
                for i in r { dequantizeRow(i, into: base.value + i * cols) }
            }
        }
        return out
    }
}
