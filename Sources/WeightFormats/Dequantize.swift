// Dequantization of ggml blocks to Float, following llama.cpp `ggml/src/ggml-quants.c`
// (dequantize_row_*). Block layouts (little-endian, fp16 = IEEE binary16):
//   Q4_0 (18 B): fp16 d, 16 B qs;             x[j] = d·((qs[j] & 15) − 8), x[j+16] = d·((qs[j] >> 4) − 8)
//   Q4_1 (20 B): fp16 d, fp16 m, 16 B qs;     x[j] = d·(qs[j] & 15) + m,   x[j+16] = d·(qs[j] >> 4) + m
//   Q5_0 (22 B): fp16 d, u32 qh, 16 B qs;     5th bit of element j is bit j of qh; x = d·(q − 16)
//   Q5_1 (24 B): fp16 d, fp16 m, u32 qh, qs;  x = d·q + m
//   Q8_0 (34 B): fp16 d, 32 × int8;           x[j] = d·q[j]
// Products are computed exactly as ggml and gguf-py do (d·q, then + m; no fused multiply-
// add), so results are bit-identical to the reference dequantization.

/// Dequantizes `count` elements (a multiple of `type.blockSize`) of `type` from `src` to `dst`.
/// `type` must satisfy `isSupported`; both are programmer errors, checked by precondition.
public func dequantizeRow(_ type: GGMLType, _ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    precondition(type.isSupported, "dequantizeRow: \(type.name) is not supported")
    precondition(count >= 0 && count % type.blockSize == 0, "dequantizeRow: \(count) is not a multiple of \(type.blockSize)")
    let nb = count / type.blockSize
    switch type {
    case .f32:
        UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: count * 4)
    case .f16:
        for i in 0..<count { dst[i] = halfToFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
    case .bf16:
        for i in 0..<count { dst[i] = bf16ToFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
    case .q8_0:
        for b in 0..<nb {
            let blk = src + b * 34, y = dst + b * 32
            let d = halfToFloat(blk.loadUnaligned(as: UInt16.self))
            let qs = (blk + 2).assumingMemoryBound(to: Int8.self)
            for j in 0..<32 { y[j] = d * Float(qs[j]) }
        }
    case .q4_0:
        for b in 0..<nb {
            let blk = src + b * 18, y = dst + b * 32
            let d = halfToFloat(blk.loadUnaligned(as: UInt16.self))
            let qs = (blk + 2).assumingMemoryBound(to: UInt8.self)
            for j in 0..<16 {
                // Float(q) − 8 is exact, and it converts from unsigned bytes, which vectorizes better.
                y[j] = d * (Float(qs[j] & 0x0f) - 8)
                y[j + 16] = d * (Float(qs[j] >> 4) - 8)
            }
        }
    case .q4_1:
        for b in 0..<nb {
            let blk = src + b * 20, y = dst + b * 32
            let d = halfToFloat(blk.loadUnaligned(as: UInt16.self))
            let m = halfToFloat(blk.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
            let qs = (blk + 4).assumingMemoryBound(to: UInt8.self)
            for j in 0..<16 {
                y[j] = d * Float(qs[j] & 0x0f) + m
                y[j + 16] = d * Float(qs[j] >> 4) + m
            }
        }
    case .q5_0:
        for b in 0..<nb {
            let blk = src + b * 22, y = dst + b * 32
            let d = halfToFloat(blk.loadUnaligned(as: UInt16.self))
            let qh = UInt32(littleEndian: blk.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
            let qs = (blk + 6).assumingMemoryBound(to: UInt8.self)
            for j in 0..<16 {
                let h0 = ((qh >> UInt32(j)) << 4) & 0x10
                let h1 = (qh >> UInt32(j + 12)) & 0x10
                y[j] = d * (Float(UInt32(qs[j] & 0x0f) | h0) - 16)
                y[j + 16] = d * (Float(UInt32(qs[j] >> 4) | h1) - 16)
            }
        }
    case .q5_1:
        for b in 0..<nb {
            let blk = src + b * 24, y = dst + b * 32
            let d = halfToFloat(blk.loadUnaligned(as: UInt16.self))
            let m = halfToFloat(blk.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
            let qh = UInt32(littleEndian: blk.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
            let qs = (blk + 8).assumingMemoryBound(to: UInt8.self)
            for j in 0..<16 {
                let h0 = ((qh >> UInt32(j)) << 4) & 0x10
                let h1 = (qh >> UInt32(j + 12)) & 0x10
                y[j] = d * Float(UInt32(qs[j] & 0x0f) | h0) + m
                y[j + 16] = d * Float(UInt32(qs[j] >> 4) | h1) + m
            }
        }
    case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_nl, .iq4_xs:
        dequantizeKQuants(type, src, dst, blocks: nb)
    default:
        preconditionFailure("unreachable: isSupported checked above")
    }
}

/// Naive twin of `dequantizeRow` for the types with a fast path (F32, F16, BF16, Q4_0,
/// Q4_1, Q5_0, Q5_1, Q8_0): element by element, straight from the block layout description
/// above, with the bit-by-bit fp16 decoder. Slow; for tests. (The K-quant and IQ4 ports
/// are checked against gguf-py instead.)
public func dequantizeRowNaive(_ type: GGMLType, _ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    precondition(type.hasFastPath && count % type.blockSize == 0)
    func byte(_ o: Int) -> UInt8 { src.load(fromByteOffset: o, as: UInt8.self) }
    func u16(_ o: Int) -> UInt16 { UInt16(byte(o)) | UInt16(byte(o + 1)) << 8 }
    func u32(_ o: Int) -> UInt32 { UInt32(u16(o)) | UInt32(u16(o + 2)) << 16 }
    for i in 0..<count {
        let b = i / type.blockSize, j = i % type.blockSize
        let base = b * type.bytesPerBlock
        // 4-bit quant of element j in a 32-element block whose nibbles start at `qs`.
        func nibble(_ qs: Int) -> UInt32 { j < 16 ? UInt32(byte(qs + j) & 15) : UInt32(byte(qs + j - 16) >> 4) }
        switch type {
        case .f32: dst[i] = Float(bitPattern: u32(4 * i))
        case .f16: dst[i] = halfToFloatNaive(u16(2 * i))
        case .bf16: dst[i] = Float(bitPattern: UInt32(u16(2 * i)) << 16)
        case .q8_0: dst[i] = halfToFloatNaive(u16(base)) * Float(Int8(bitPattern: byte(base + 2 + j)))
        case .q4_0: dst[i] = halfToFloatNaive(u16(base)) * (Float(nibble(base + 2)) - 8)
        case .q4_1: dst[i] = halfToFloatNaive(u16(base)) * Float(nibble(base + 4)) + halfToFloatNaive(u16(base + 2))
        case .q5_0:
            let high = (u32(base + 2) >> UInt32(j)) & 1
            dst[i] = halfToFloatNaive(u16(base)) * (Float(nibble(base + 6) | high << 4) - 16)
        case .q5_1:
            let high = (u32(base + 4) >> UInt32(j)) & 1
            dst[i] = halfToFloatNaive(u16(base)) * Float(nibble(base + 8) | high << 4) + halfToFloatNaive(u16(base + 2))
        default: preconditionFailure("unsupported")
        }
    }
}
