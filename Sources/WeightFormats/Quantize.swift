// Reference quantizers, ports of llama.cpp `ggml/src/ggml-quants.c` quantize_row_*_ref
// (the plain-C versions every SIMD path is tested against), so files written here hold
// the same bytes llama.cpp would write. Block layouts: see Dequantize.swift.

/// Encodes `values` (a multiple of `type.blockSize` of them, all finite) as `type`.
public func quantize(_ type: GGMLType, _ values: [Float]) throws -> [UInt8] {
    guard type.isQuantizable else {
        throw WeightFormatError.invalidArgument("quantize: \(type.name) is not supported (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 are)")
    }
    guard values.count % type.blockSize == 0 else {
        throw WeightFormatError.invalidArgument("quantize: \(values.count) values is not a multiple of the \(type.name) block size \(type.blockSize)")
    }
    if let i = values.firstIndex(where: { !$0.isFinite }) {
        throw WeightFormatError.invalidArgument("quantize: value \(i) is \(values[i]); only finite values can be quantized")
    }
    var out = [UInt8](repeating: 0, count: values.count / type.blockSize * type.bytesPerBlock)
    values.withUnsafeBufferPointer { x in
        out.withUnsafeMutableBytes { y in quantizeRow(type, x, y) }
    }
    return out
}

/// C's `(int8_t)` cast of a float (truncation toward zero), made total: NaN gives 0 and
/// out-of-range values saturate instead of being undefined behaviour.
@inline(__always)
private func truncToInt(_ v: Float) -> Int32 {
    guard !v.isNaN else { return 0 }
    return Int32(Swift.max(-128, Swift.min(127, v)).rounded(.towardZero))
}

@inline(__always)
private func put16(_ y: UnsafeMutableRawBufferPointer, _ at: Int, _ v: UInt16) {
    y[at] = UInt8(v & 0xff)
    y[at + 1] = UInt8(v >> 8)
}

private func quantizeRow(_ type: GGMLType, _ x: UnsafeBufferPointer<Float>, _ y: UnsafeMutableRawBufferPointer) {
    let qk = type.blockSize, nb = x.count / qk, bpb = type.bytesPerBlock
    switch type {
    case .f32:
        for i in 0..<x.count { y.storeBytes(of: x[i].bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
    case .f16:
        for i in 0..<x.count { put16(y, 2 * i, floatToHalf(x[i])) }
    case .bf16:
        for i in 0..<x.count { put16(y, 2 * i, floatToBF16(x[i])) }
    case .q8_0:
        for b in 0..<nb {
            let xs = b * qk, o = b * bpb
            var amax: Float = 0
            for j in 0..<qk { amax = Swift.max(amax, abs(x[xs + j])) }
            let d = amax / 127, id: Float = d != 0 ? 1 / d : 0
            put16(y, o, floatToHalf(d))
            for j in 0..<qk { y[o + 2 + j] = UInt8(bitPattern: Int8(truncToInt((x[xs + j] * id).rounded()))) }
        }
    case .q4_0, .q5_0:
        let levels: Float = type == .q4_0 ? 8 : 16
        let offset = levels + 0.5   // ggml adds 8.5f (16.5f) in one step: keep the rounding identical
        let top: Int32 = type == .q4_0 ? 15 : 31
        let qsAt = type == .q4_0 ? 2 : 6
        for b in 0..<nb {
            let xs = b * qk, o = b * bpb
            var amax: Float = 0, maxv: Float = 0
            for j in 0..<qk where amax < abs(x[xs + j]) { amax = abs(x[xs + j]); maxv = x[xs + j] }
            let d = maxv / -levels, id: Float = d != 0 ? 1 / d : 0
            put16(y, o, floatToHalf(d))
            var qh: UInt32 = 0
            for j in 0..<qk / 2 {
                let q0 = Swift.min(top, truncToInt(x[xs + j] * id + offset))
                let q1 = Swift.min(top, truncToInt(x[xs + qk / 2 + j] * id + offset))
                y[o + qsAt + j] = UInt8(q0 & 0x0f) | UInt8(q1 & 0x0f) << 4
                qh |= (UInt32(q0 & 0x10) >> 4) << UInt32(j)
                qh |= (UInt32(q1 & 0x10) >> 4) << UInt32(j + qk / 2)
            }
            if type == .q5_0 { y.storeBytes(of: qh.littleEndian, toByteOffset: o + 2, as: UInt32.self) }
        }
    case .q4_1, .q5_1:
        let steps: Float = type == .q4_1 ? 15 : 31
        let qsAt = type == .q4_1 ? 4 : 8
        for b in 0..<nb {
            let xs = b * qk, o = b * bpb
            var minv = Float.greatestFiniteMagnitude, maxv = -Float.greatestFiniteMagnitude
            for j in 0..<qk { minv = Swift.min(minv, x[xs + j]); maxv = Swift.max(maxv, x[xs + j]) }
            let d = (maxv - minv) / steps, id: Float = d != 0 ? 1 / d : 0
            put16(y, o, floatToHalf(d))
            put16(y, o + 2, floatToHalf(minv))
            var qh: UInt32 = 0
            for j in 0..<qk / 2 {
                var q0 = truncToInt((x[xs + j] - minv) * id + 0.5)
                var q1 = truncToInt((x[xs + qk / 2 + j] - minv) * id + 0.5)
                if type == .q4_1 { q0 = Swift.min(15, q0); q1 = Swift.min(15, q1) }
                y[o + qsAt + j] = UInt8(q0 & 0x0f) | UInt8(q1 & 0x0f) << 4
                qh |= (UInt32(q0 & 0x10) >> 4) << UInt32(j)
                qh |= (UInt32(q1 & 0x10) >> 4) << UInt32(j + qk / 2)
            }
            if type == .q5_1 { y.storeBytes(of: qh.littleEndian, toByteOffset: o + 4, as: UInt32.self) }
        }
    default:
        preconditionFailure("unreachable: isQuantizable checked by quantize")
    }
}
