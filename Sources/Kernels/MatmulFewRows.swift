// y = x · Wᵀ for a few rows of fp32 weights (a ~10-token query through MiniLM at ask time).
// OpenBLAS first copies all of W into its panel layout, which for T ≈ 10 costs more than the
// products; here W streams from memory once, 4 rows at a time through the register tile of
// `quantMatmul` (`multiplyTile`) while they sit in L1, with the output channels split
// across the threads. `matmulFewRowsPanels` does the same from weights packed once into
// 64-channel panels (MiniLM's), with no horizontal sums.
import Parallelism

/// Largest T for which `matmulForward` takes the few-rows path.
public let matmulFewRowsLimit = 16

/// y[T, OC] = x[T, C] · W[OC, C]ᵀ (+ y if `accumulate`), for 1 ≤ T ≤ `matmulFewRowsLimit`;
/// `matmulForward` adds the bias. The naive twin is `matmulForwardNaive`.
@usableFromInline
func matmulFewRows(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                   T: Int, C: Int, OC: Int, accumulate: Bool) {
    precondition(T >= 1 && T <= matmulFewRowsLimit, "matmulFewRows takes 1...\(matmulFewRowsLimit) rows, got \(T)")
    let ys = UnsafeSendable(y)
    // At least 64 output channels per thread: below that, waking a worker costs more than it saves.
    parallelRanges((OC + 3) / 4, minimum: 16) { quads in
        for quad in quads {
            let r0 = 4 * quad, nr = min(4, OC - r0)
            let row = { (r: Int) in w + (r0 + min(r, nr - 1)) * C }  // missing rows repeat the last
            multiplyTile(ys.value, yStride: OC, x, xStride: C, T: T, rows: (row(0), row(1), row(2), row(3)),
                         firstRow: r0, rowCount: nr, C: C, accumulate: accumulate)
        }
    }
}

/// W [OC, C] repacked for `matmulFewRowsPanels`: one panel per 64 output channels, each
/// panel C rows of 64 weights ([OC/64][C][64]), so the kernel reads memory front to back.
/// Requires OC to be a multiple of 64.
/// - Parameters:
///   - w: [OC, C] weight, as stored
///   - panels: [OC/64, C, 64] output
public func packPanels(_ w: UnsafePointer<Float>, OC: Int, C: Int, into panels: UnsafeMutablePointer<Float>) {
    precondition(OC % 64 == 0, "packPanels needs a multiple of 64 output channels, got \(OC)")
    for block in 0..<(OC / 64) {
        let panel = panels + block * C * 64
        for j in 0..<64 {
            let row = w + (block * 64 + j) * C
            for c in 0..<C { panel[c * 64 + j] = row[c] }
        }
    }
}

/// y[T, OC] = x[T, C] · W[OC, C]ᵀ (+ y if `accumulate`) from W packed by `packPanels`, for
/// 1 ≤ T ≤ `matmulFewRowsLimit`. Each block of 4 rows × 64 output channels goes through
/// `panelTile` (a tail of 1 or 2 rows takes a narrower tile, as in `multiplyTile`): no
/// horizontal sums, and the panel streams with a fixed stride (W as stored would be read with
/// a stride of C floats per channel, which the prefetchers do not follow).
/// - Parameters:
///   - y: [T, OC] output
///   - x: [T, C] input
///   - panels: [OC/64, C, 64] the weight packed by `packPanels`
///   - bias: [OC] or nil
public func matmulFewRowsPanels(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ panels: UnsafePointer<Float>,
                                _ bias: UnsafePointer<Float>?, T: Int, C: Int, OC: Int, accumulate: Bool = false) {
    precondition(T >= 1 && T <= matmulFewRowsLimit && OC % 64 == 0, "matmulFewRowsPanels: T \(T), OC \(OC)")
    typealias V = SIMD16<Float>
    let ys = UnsafeSendable(y)
    parallelRanges(OC / 64, minimum: 1) { blocks in
        let y = ys.value
        for block in blocks {
            let o = 64 * block
            let panel = UnsafeRawPointer(panels + block * C * 64)
            var t = 0
            while t < T {
                let nt = min(4, T - t)
                // missing rows alias the last one; their results are dropped
                let x0 = x + t * C, x1 = x + min(t + 1, T - 1) * C
                let x2 = x + min(t + 2, T - 1) * C, x3 = x + min(t + 3, T - 1) * C
                let acc = switch nt {
                case 1: panelTile(1, (x0, x1, x2, x3), panel, C: C)
                case 2: panelTile(2, (x0, x1, x2, x3), panel, C: C)
                default: panelTile(4, (x0, x1, x2, x3), panel, C: C)
                }
                for i in 0..<nt {
                    let a = i == 0 ? acc.0 : i == 1 ? acc.1 : i == 2 ? acc.2 : acc.3
                    let out = UnsafeMutableRawPointer(y + (t + i) * OC + o)
                    let b = UnsafeRawPointer(bias.map { $0 + o })
                    func put(_ byte: Int, _ v: V) {
                        var r = v
                        if accumulate { r += out.loadUnaligned(fromByteOffset: byte, as: V.self) }
                        if let b { r += b.loadUnaligned(fromByteOffset: byte, as: V.self) }
                        out.storeBytes(of: r, toByteOffset: byte, as: V.self)
                    }
                    put(0, a.a0); put(64, a.a1); put(128, a.a2); put(192, a.a3)
                }
                t += nt
            }
        }
    }
}

/// One 64-channel panel times input rows x_0..<x_n: result i holds output channels
/// 0..<64 of row i as four SIMD16 (results of i ≥ n are undefined). `n` (1, 2 or 4) is a
/// constant at every call site, so inlining leaves one straight loop per width.
///
/// Each output channel sums w[c]·x[c] over c with one FMA per step. The 16 SIMD16
/// accumulators of all 64 channels for 4 rows would be 32 AVX2 registers, so the panel's
/// four 16-channel groups take a pass each (8 registers of accumulators; per input channel
/// one load of the group, n broadcasts of x, 2·n FMAs), which changes no channel's sum.
@inline(__always)
private func panelTile(
    _ n: Int, _ x: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>),
    _ panel: UnsafeRawPointer, C: Int
) -> (Accumulators4, Accumulators4, Accumulators4, Accumulators4) {
    var a0 = Accumulators4(), a1 = Accumulators4(), a2 = Accumulators4(), a3 = Accumulators4()
    (a0.a0, a1.a0, a2.a0, a3.a0) = panelGroup(n, x, panel, C: C, group: 0)
    (a0.a1, a1.a1, a2.a1, a3.a1) = panelGroup(n, x, panel, C: C, group: 1)
    (a0.a2, a1.a2, a2.a2, a3.a2) = panelGroup(n, x, panel, C: C, group: 2)
    (a0.a3, a1.a3, a2.a3, a3.a3) = panelGroup(n, x, panel, C: C, group: 3)
    return (a0, a1, a2, a3)
}

/// Output channels 16·group..<16·group + 16 of the panel for input rows x_0..<x_n.
@inline(__always)
private func panelGroup(
    _ n: Int, _ x: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>),
    _ panel: UnsafeRawPointer, C: Int, group: Int
) -> (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>) {
    typealias V = SIMD16<Float>
    var s0 = V(), s1 = V(), s2 = V(), s3 = V()
    var w = panel + 64 * group
    for c in 0..<C {
        let v = w.loadUnaligned(as: V.self)
        s0.addProduct(v, V(repeating: x.0[c]))
        if n > 1 { s1.addProduct(v, V(repeating: x.1[c])) }
        if n > 2 { s2.addProduct(v, V(repeating: x.2[c])); s3.addProduct(v, V(repeating: x.3[c])) }
        w += 256
    }
    return (s0, s1, s2, s3)
}

/// The 64 output channels of one input row in `panelTile`, as four 16-channel groups.
struct Accumulators4 {
    var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
}
