// Y = X·Wᵀ for a few rows of X (short prefills, batched decode), reading W in its packed
// quantized form. Below ~32 rows an fp32 sgemm is bound by streaming the fp32 weights (4 B
// per weight, 425 MB for SmolLM2) rather than by arithmetic; here each weight row is decoded
// once into an L1-resident fp32 scratch and then multiplied into every row of X with a
// 4-weight-rows × 4-input-rows register tile (16 accumulators, 8 loads per 16 FMAs).

/// - Parameters:
///   - y: [T, OC] output (row stride `yStride`, ≥ OC)
///   - x: [T, C] input (row stride `xStride`, ≥ C)
///   - w: [OC, C] weights in any QuantFormat
///   - accumulate: y += instead of y =
public func quantMatmul(
    _ y: UnsafeMutablePointer<Float>, yStride: Int, _ x: UnsafePointer<Float>, xStride: Int,
    _ w: QuantMatrix, T: Int, accumulate: Bool = false
) {
    let C = w.cols, OC = w.rows
    if T == 1 {  // one row: the streaming matvec, which decodes in registers
        if accumulate {
            let tmp = UnsafeMutablePointer<Float>.allocate(capacity: OC)
            defer { tmp.deallocate() }
            quantMatvec(tmp, w, x)
            for o in 0..<OC { y[o] += tmp[o] }
        } else {
            quantMatvec(y, w, x)
        }
        return
    }
    let ys = UnsafeSendable(y), xs = UnsafeSendable(x)
    let quads = (OC + 3) / 4
    parallelRanges(quads, minimum: 4) { qr in
        let y = ys.value, x = xs.value
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 4 * C + 64)
        defer { scratch.deallocate() }
        let w0 = scratch, w1 = scratch + C, w2 = scratch + 2 * C, w3 = scratch + 3 * C
        for quad in qr {
            let r0 = 4 * quad, nr = min(4, OC - r0)
            // missing rows (OC not a multiple of 4) decode row r0 again; their results are dropped
            w.dequantizeRowFast(r0, into: w0)
            w.dequantizeRowFast(r0 + min(1, nr - 1), into: w1)
            w.dequantizeRowFast(r0 + min(2, nr - 1), into: w2)
            w.dequantizeRowFast(r0 + min(3, nr - 1), into: w3)
            multiplyTile(y, yStride: yStride, x, xStride: xStride, T: T, rows: (UnsafePointer(w0), UnsafePointer(w1), UnsafePointer(w2), UnsafePointer(w3)),
                         firstRow: r0, rowCount: nr, C: C, accumulate: accumulate)
        }
    }
}

/// y[t, r0 + r] (=|+=) w_r · x_t for the weight rows `rows` (w_r, r < `rowCount`; the others
/// repeat a real row and are dropped) and every input row t < T, 4 input rows at a time in
/// a register tile of 4 × 4 SIMD16 accumulators (8 loads per 16 FMAs). The weight rows
/// should be in L1 (4 rows of C floats): they are read once per 4 input rows.
@inline(__always)
func multiplyTile(
    _ y: UnsafeMutablePointer<Float>, yStride: Int, _ x: UnsafePointer<Float>, xStride: Int, T: Int,
    rows: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>),
    firstRow r0: Int, rowCount nr: Int, C: Int, accumulate: Bool
) {
    let (w0, w1, w2, w3) = rows
    var t = 0
    while t < T {
        let nt = min(4, T - t)
        // x rows t..<t+nt (missing ones alias the last; their results are dropped)
        let x0 = x + t * xStride
        let x1 = x + min(t + 1, T - 1) * xStride
        let x2 = x + min(t + 2, T - 1) * xStride
        let x3 = x + min(t + 3, T - 1) * xStride
        var a00 = SIMD16<Float>(), a01 = SIMD16<Float>(), a02 = SIMD16<Float>(), a03 = SIMD16<Float>()
        var a10 = SIMD16<Float>(), a11 = SIMD16<Float>(), a12 = SIMD16<Float>(), a13 = SIMD16<Float>()
        var a20 = SIMD16<Float>(), a21 = SIMD16<Float>(), a22 = SIMD16<Float>(), a23 = SIMD16<Float>()
        var a30 = SIMD16<Float>(), a31 = SIMD16<Float>(), a32 = SIMD16<Float>(), a33 = SIMD16<Float>()
        var c = 0
        while c + 16 <= C {
            let b0 = UnsafeRawPointer(x0 + c).loadUnaligned(as: SIMD16<Float>.self)
            let b1 = UnsafeRawPointer(x1 + c).loadUnaligned(as: SIMD16<Float>.self)
            let b2 = UnsafeRawPointer(x2 + c).loadUnaligned(as: SIMD16<Float>.self)
            let b3 = UnsafeRawPointer(x3 + c).loadUnaligned(as: SIMD16<Float>.self)
            let v0 = UnsafeRawPointer(w0 + c).loadUnaligned(as: SIMD16<Float>.self)
            a00.addProduct(v0, b0); a01.addProduct(v0, b1); a02.addProduct(v0, b2); a03.addProduct(v0, b3)
            let v1 = UnsafeRawPointer(w1 + c).loadUnaligned(as: SIMD16<Float>.self)
            a10.addProduct(v1, b0); a11.addProduct(v1, b1); a12.addProduct(v1, b2); a13.addProduct(v1, b3)
            let v2 = UnsafeRawPointer(w2 + c).loadUnaligned(as: SIMD16<Float>.self)
            a20.addProduct(v2, b0); a21.addProduct(v2, b1); a22.addProduct(v2, b2); a23.addProduct(v2, b3)
            let v3 = UnsafeRawPointer(w3 + c).loadUnaligned(as: SIMD16<Float>.self)
            a30.addProduct(v3, b0); a31.addProduct(v3, b1); a32.addProduct(v3, b2); a33.addProduct(v3, b3)
            c += 16
        }
        // s_r holds the 4 token sums of weight row r
        var s0 = SIMD4<Float>(treeSum(a00), treeSum(a01), treeSum(a02), treeSum(a03))
        var s1 = SIMD4<Float>(treeSum(a10), treeSum(a11), treeSum(a12), treeSum(a13))
        var s2 = SIMD4<Float>(treeSum(a20), treeSum(a21), treeSum(a22), treeSum(a23))
        var s3 = SIMD4<Float>(treeSum(a30), treeSum(a31), treeSum(a32), treeSum(a33))
        while c < C {  // C not a multiple of 16
            let xc = SIMD4<Float>(x0[c], x1[c], x2[c], x3[c])
            s0 += w0[c] * xc; s1 += w1[c] * xc; s2 += w2[c] * xc; s3 += w3[c] * xc
            c += 1
        }
        for i in 0..<nt {
            let yr = y + (t + i) * yStride + r0
            let v = SIMD4<Float>(s0[i], s1[i], s2[i], s3[i])
            for r in 0..<nr {
                if accumulate { yr[r] += v[r] } else { yr[r] = v[r] }
            }
        }
        t += nt
    }
}

extension QuantMatrix {
    /// Row `r` decoded to fp32 with the SIMD decoders of the packed layouts (the scalar
    /// `dequantizeRow` for the other formats). Exact: the same values as `dequantizeRow`.
    /// - Parameters:
    ///   - dst: [cols], 64-byte aligned for the packed formats' stores to be fast
    @inlinable
    public func dequantizeRowFast(_ r: Int, into dst: UnsafeMutablePointer<Float>) {
        let row = data + r * rowBytes, n = cols, nb = n / 32
        switch format {
        case .q4Packed:
            let dp = row.assumingMemoryBound(to: Float16.self), mp = dp + nb
            var e = 0, qb = row + 4 * nb
            while e + 128 <= n {
                let v = qb.loadUnaligned(as: SIMD16<UInt32>.self)
                for k in 0..<8 {
                    let b = (e + 16 * k) / 32
                    var f = SIMD16<Float>(repeating: Float(mp[b]))
                    f.addProduct(smallIntsToFloat((v &>> UInt32(4 * k)) & 0xF), SIMD16(repeating: Float(dp[b])))
                    UnsafeMutableRawPointer(dst + e + 16 * k).storeBytes(of: f, as: SIMD16<Float>.self)
                }
                e += 128; qb += 64
            }
            if e + 64 <= n {  // tail group of 64: 8 lanes, nibble k = elements 8k..<8k+8
                let v = qb.loadUnaligned(as: SIMD8<UInt32>.self)
                for k in 0..<8 {
                    let b = (e + 8 * k) / 32
                    var f = SIMD8<Float>(repeating: Float(mp[b]))
                    f.addProduct(smallIntsToFloat((v &>> UInt32(4 * k)) & 0xF), SIMD8(repeating: Float(dp[b])))
                    UnsafeMutableRawPointer(dst + e + 8 * k).storeBytes(of: f, as: SIMD8<Float>.self)
                }
                e += 64; qb += 32
            }
            if e + 32 <= n {  // tail group of 32: 4 lanes, nibble k = elements 4k..<4k+4
                let v = qb.loadUnaligned(as: SIMD4<UInt32>.self)
                let b = e / 32
                for k in 0..<8 {
                    var f = SIMD4<Float>(repeating: Float(mp[b]))
                    f.addProduct(smallIntsToFloat((v &>> UInt32(4 * k)) & 0xF), SIMD4(repeating: Float(dp[b])))
                    UnsafeMutableRawPointer(dst + e + 4 * k).storeBytes(of: f, as: SIMD4<Float>.self)
                }
            }
        case .q8Packed:
            let dp = row.assumingMemoryBound(to: Float16.self)
            let bias = SIMD16<Float>(repeating: 8_388_608 + 128)
            var e = 0, qb = row + 2 * nb
            while e + 64 <= n {
                let v = qb.loadUnaligned(as: SIMD16<UInt32>.self)
                for k in 0..<4 {
                    let q = unsafeBitCast(((v &>> UInt32(8 * k)) & 0xFF) | 0x4B00_0000, to: SIMD16<Float>.self) - bias
                    let f = q * Float(dp[(e + 16 * k) / 32])
                    UnsafeMutableRawPointer(dst + e + 16 * k).storeBytes(of: f, as: SIMD16<Float>.self)
                }
                e += 64; qb += 64
            }
            if e + 32 <= n {  // tail block: 8 lanes, byte k = elements 8k..<8k+8
                let v = qb.loadUnaligned(as: SIMD8<UInt32>.self)
                let d = Float(dp[e / 32])
                for k in 0..<4 {
                    let q = unsafeBitCast(((v &>> UInt32(8 * k)) & 0xFF) | 0x4B00_0000, to: SIMD8<Float>.self)
                        - SIMD8<Float>(repeating: 8_388_608 + 128)
                    UnsafeMutableRawPointer(dst + e + 8 * k).storeBytes(of: q * d, as: SIMD8<Float>.self)
                }
            }
        case .f32:
            dst.update(from: row.assumingMemoryBound(to: Float.self), count: n)
        default:
            dequantizeRow(r, into: dst)
        }
    }
}

/// Reference for `quantMatmul`: the naive matvec row by row.
public func quantMatmulNaive(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: QuantMatrix, T: Int) {
    for t in 0..<T { quantMatvecNaive(y + t * w.rows, w, x + t * w.cols) }
}
