// Dequantization of the 256-element "K" quants and the IQ4 types, ports of llama.cpp
// `ggml/src/ggml-quants.c` (dequantize_row_q2_K ... q6_K, iq4_nl, iq4_xs) with the same
// order of float operations, so results equal ggml's and gguf-py's (tested against
// gguf-py on random blocks). These are plain ports, not optimized; they let the engine
// load common Q4_K_M / Q6_K files by dequantizing at load time.

/// ggml `kvalues_iq4nl`: the non-linear 4-bit grid of IQ4_NL and IQ4_XS.
let iq4nlValues: [Int8] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]

/// ggml `get_scale_min_k4`: 6-bit scale and min `j` (0..<8) of a Q4_K/Q5_K block's 12 bytes.
@inline(__always)
private func scaleMinK4(_ j: Int, _ q: UnsafePointer<UInt8>) -> (Float, Float) {
    if j < 4 { return (Float(q[j] & 63), Float(q[j + 4] & 63)) }
    return (Float((q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4)), Float((q[j + 4] >> 4) | ((q[j] >> 6) << 4)))
}

/// Dequantizes `nb` blocks of a K-quant or IQ4 type (see `dequantizeRow`).
func dequantizeKQuants(_ type: GGMLType, _ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, blocks nb: Int) {
    let bpb = type.bytesPerBlock
    // The IQ4 grid as 16 floats on the stack (no array access in the inner loops).
    var grid = SIMD16<Float>()
    for i in 0..<16 { grid[i] = Float(iq4nlValues[i]) }
    for b in 0..<nb {
        let blk = src + b * bpb
        let u8 = blk.assumingMemoryBound(to: UInt8.self)
        var y = dst + b * type.blockSize
        func half(_ at: Int) -> Float { halfToFloat(blk.loadUnaligned(fromByteOffset: at, as: UInt16.self)) }
        switch type {
        case .q2_K:   // scales[16], qs[64], d, dmin
            let d = half(80), dmin = half(82)
            var q = u8 + 16, isc = 0
            for _ in 0..<2 {
                var shift: UInt8 = 0
                for _ in 0..<4 {
                    for half16 in 0..<2 {
                        let sc = u8[isc]; isc += 1
                        let dl = d * Float(sc & 0xf), ml = dmin * Float(sc >> 4)
                        for l in 0..<16 { y[l] = dl * Float((q[l + 16 * half16] >> shift) & 3) - ml }
                        y += 16
                    }
                    shift += 2
                }
                q += 32
            }
        case .q3_K:   // hmask[32], qs[64], scales[12], d
            let dAll = half(108)
            let scales = unpackQ3KScales(u8 + 96)
            var q = u8 + 32
            let hm = u8
            var m: UInt8 = 1, isc = 0
            for _ in 0..<2 {
                var shift: UInt8 = 0
                for _ in 0..<4 {
                    for half16 in 0..<2 {
                        let dl = dAll * Float(scales[isc] - 32); isc += 1
                        for l in 0..<16 {
                            let k = l + 16 * half16
                            y[l] = dl * Float(Int32((q[k] >> shift) & 3) - (hm[k] & m != 0 ? 0 : 4))
                        }
                        y += 16
                    }
                    shift += 2
                    m <<= 1
                }
                q += 32
            }
        case .q4_K, .q5_K:   // d, dmin, scales[12], (qh[32],) qs[128]
            let d = half(0), dmin = half(2)
            let sc = u8 + 4
            let qh = u8 + 16
            var ql = type == .q4_K ? u8 + 16 : u8 + 48
            var u1: UInt8 = 1, u2: UInt8 = 2
            for j in stride(from: 0, to: 8, by: 2) {
                let (s1, m1) = scaleMinK4(j, sc), (s2, m2) = scaleMinK4(j + 1, sc)
                let d1 = d * s1, dm1 = dmin * m1, d2 = d * s2, dm2 = dmin * m2
                for l in 0..<32 {
                    let high: UInt8 = type == .q5_K && qh[l] & u1 != 0 ? 16 : 0
                    y[l] = d1 * Float((ql[l] & 0xf) + high) - dm1
                }
                for l in 0..<32 {
                    let high: UInt8 = type == .q5_K && qh[l] & u2 != 0 ? 16 : 0
                    y[32 + l] = d2 * Float((ql[l] >> 4) + high) - dm2
                }
                y += 64; ql += 32; u1 <<= 2; u2 <<= 2
            }
        case .q6_K:   // ql[128], qh[64], scales[16] (int8), d
            let d = half(208)
            var ql = u8, qh = u8 + 128
            var sc = UnsafeRawPointer(u8 + 192).assumingMemoryBound(to: Int8.self)
            for _ in 0..<2 {
                // Four 32-element quarters; each half of a quarter (16 elements) has one scale.
                for quarter in 0..<4 {
                    let lo = ql + (quarter & 1) * 32, hiShift = UInt8(2 * quarter), nibbleShift: UInt8 = quarter < 2 ? 0 : 4
                    for h in 0..<2 {
                        let ds = d * Float(sc[h + 2 * quarter])
                        let o = 32 * quarter + 16 * h
                        for l in (16 * h)..<(16 * h + 16) {
                            let q = Int32(((lo[l] >> nibbleShift) & 0xf) | (((qh[l] >> hiShift) & 3) << 4)) - 32
                            y[o + l - 16 * h] = ds * Float(q)
                        }
                    }
                }
                y += 128; ql += 64; qh += 32; sc += 8
            }
        case .iq4_nl:   // d, qs[16]
            let d = half(0)
            for j in 0..<16 {
                y[j] = d * grid[Int(u8[2 + j] & 0xf)]
                y[j + 16] = d * grid[Int(u8[2 + j] >> 4)]
            }
        case .iq4_xs:   // d, scales_h (u16), scales_l[4], qs[128]
            let d = half(0)
            let scalesH = UInt16(u8[2]) | UInt16(u8[3]) << 8
            var qs = u8 + 8
            for ib in 0..<8 {
                let low = (u8[4 + ib / 2] >> UInt8(4 * (ib % 2))) & 0xf
                let ls = Int32(low) | Int32((scalesH >> UInt16(2 * ib)) & 3) << 4
                let dl = d * Float(ls - 32)
                for j in 0..<16 {
                    y[j] = dl * grid[Int(qs[j] & 0xf)]
                    y[j + 16] = dl * grid[Int(qs[j] >> 4)]
                }
                y += 32; qs += 16
            }
        default:
            preconditionFailure("dequantizeKQuants: \(type.name)")
        }
    }
}

/// The 16 6-bit scales of a Q3_K block, unpacked from 12 bytes as ggml does with kmask1/2.
@inline(__always)
private func unpackQ3KScales(_ p: UnsafePointer<UInt8>) -> SIMD16<Int32> {
    func word(_ i: Int) -> UInt32 { UInt32(p[4 * i]) | UInt32(p[4 * i + 1]) << 8 | UInt32(p[4 * i + 2]) << 16 | UInt32(p[4 * i + 3]) << 24 }
    let kmask1: UInt32 = 0x0303_0303, kmask2: UInt32 = 0x0f0f_0f0f
    let a0 = word(0), a1 = word(1), tmp = word(2)
    let aux = SIMD4<UInt32>((a0 & kmask2) | (((tmp >> 0) & kmask1) << 4), (a1 & kmask2) | (((tmp >> 2) & kmask1) << 4),
                                ((a0 >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4), ((a1 >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4))
    var out = SIMD16<Int32>()
    for i in 0..<16 { out[i] = Int32(Int8(bitPattern: UInt8(truncatingIfNeeded: aux[i / 4] >> (8 * UInt32(i % 4))))) }
    return out
}
