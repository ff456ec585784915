// Y = X·Wᵀ for a few rows of X (short prefills, several stacked), reading W in its packed
// quantized form. Below ~32 rows an fp32 sgemm is bound by streaming the fp32 weights (4 B
// per weight, 425 MB for SmolLM2) rather than by arithmetic; here each weight row is decoded
// once into an L1-resident fp32 scratch and then multiplied into every row of X, 4 weight
// rows by 2 input rows at a time in the AVX2 registers (`tileDots`).
import Parallelism

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
/// repeat a real row and are dropped) and every input row t < T. Input rows go 4 at a time
/// through `tileDots`; a tail of 3 rows takes the 4-row tile, a tail of 2 or 1 its own
/// narrower tile, so a short prefill costs its rows rather than whole tiles. The weight rows should be in L1 (4 rows of C
/// floats): they are read once per tile.
@inline(__always)
func multiplyTile(
    _ y: UnsafeMutablePointer<Float>, yStride: Int, _ x: UnsafePointer<Float>, xStride: Int, T: Int,
    rows: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>),
    firstRow r0: Int, rowCount nr: Int, C: Int, accumulate: Bool
) {
    var t = 0
    while t < T {
        let nt = min(4, T - t)
        // x rows t..<t+nt (missing ones alias the last; their results are dropped)
        let xs = (x + t * xStride, x + min(t + 1, T - 1) * xStride,
                  x + min(t + 2, T - 1) * xStride, x + min(t + 3, T - 1) * xStride)
        let sums = switch nt {
        case 1: tileDots(1, xs, rows, C: C)
        case 2: tileDots(2, xs, rows, C: C)
        default: tileDots(4, xs, rows, C: C)
        }
        for i in 0..<nt {
            let yr = y + (t + i) * yStride + r0
            let v = i == 0 ? sums.0 : i == 1 ? sums.1 : i == 2 ? sums.2 : sums.3
            for r in 0..<nr {
                if accumulate { yr[r] += v[r] } else { yr[r] = v[r] }
            }
        }
        t += nt
    }
}

/// The dot products of input rows x_0..<x_n with weight rows w_0...w_3: result i holds
/// (w_0·x_i, …, w_3·x_i); results of i ≥ n are undefined. `n` (1, 2 or 4) is a constant at
/// every call site, so inlining leaves one straight loop per width.
///
/// Each dot is a 16-lane accumulator (lane k sums w[c + k]·x[c + k] over c = 0, 16, 32, …,
/// one FMA per step), then `treeSum`, then the scalar tail. The 16 accumulators of a 4 × 4
/// tile would be 32 AVX2 registers, so the tile is taken apart without changing any lane's
/// arithmetic: lanes 0..<8 and 8..<16 are independent sums, each pass over the row takes one
/// half for two inputs (8 accumulators, 4 weight and 2 input loads per 8 FMAs, all in the 16
/// registers), and the halves meet again before `treeSum`.
@inline(__always)
private func tileDots(
    _ n: Int, _ x: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>),
    _ w: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>), C: Int
) -> (SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>) {
    let C16 = C / 16 * 16
    var s = (SIMD4<Float>(), SIMD4<Float>(), SIMD4<Float>(), SIMD4<Float>())
    let lo01 = halfTileDots(n > 1 ? 2 : 1, x.0, x.1, w, C16: C16, lane: 0)
    let hi01 = halfTileDots(n > 1 ? 2 : 1, x.0, x.1, w, C16: C16, lane: 8)
    s.0 = lo01.0.sums(hi01.0)
    if n > 1 { s.1 = lo01.1.sums(hi01.1) }
    if n > 2 {
        let lo23 = halfTileDots(2, x.2, x.3, w, C16: C16, lane: 0)
        let hi23 = halfTileDots(2, x.2, x.3, w, C16: C16, lane: 8)
        s.2 = lo23.0.sums(hi23.0)
        s.3 = lo23.1.sums(hi23.1)
    }
    var c = C16
    while c < C {  // C not a multiple of 16
        let wc = SIMD4<Float>(w.0[c], w.1[c], w.2[c], w.3[c])
        s.0 += x.0[c] * wc
        if n > 1 { s.1 += x.1[c] * wc }
        if n > 2 { s.2 += x.2[c] * wc; s.3 += x.3[c] * wc }
        c += 1
    }
    return s
}

/// Lanes `lane..<lane + 8` of the 16-lane accumulators of weight rows w_0...w_3 with input
/// rows x_0 and (n = 2) x_1, over the first C16 columns.
@inline(__always)
private func halfTileDots(
    _ n: Int, _ x0: UnsafePointer<Float>, _ x1: UnsafePointer<Float>,
    _ w: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>), C16: Int, lane: Int
) -> (HalfAccumulators4, HalfAccumulators4) {
    var a0 = HalfAccumulators4(), a1 = HalfAccumulators4()
    var c = lane
    while c < C16 {
        let v = (load8(w.0, c), load8(w.1, c), load8(w.2, c), load8(w.3, c))
        a0.add(load8(x0, c), v)
        if n > 1 { a1.add(load8(x1, c), v) }
        c += 16
    }
    return (a0, a1)
}

/// Half (8 lanes) of four 16-lane accumulators fed by one input vector and four weight
/// vectors: a_j += b · v_j.
struct HalfAccumulators4 {
    var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()

    @inline(__always)
    mutating func add(_ b: SIMD8<Float>, _ v: (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>)) {
        a0.addProduct(v.0, b); a1.addProduct(v.1, b); a2.addProduct(v.2, b); a3.addProduct(v.3, b)
    }

    /// The four horizontal sums of these lanes (0..<8) joined with `high` (lanes 8..<16).
    @inline(__always)
    func sums(_ high: HalfAccumulators4) -> SIMD4<Float> {
        SIMD4(treeSum(SIMD16(lowHalf: a0, highHalf: high.a0)), treeSum(SIMD16(lowHalf: a1, highHalf: high.a1)),
              treeSum(SIMD16(lowHalf: a2, highHalf: high.a2)), treeSum(SIMD16(lowHalf: a3, highHalf: high.a3)))
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
