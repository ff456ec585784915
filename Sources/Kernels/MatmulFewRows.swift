// y = x · Wᵀ for a few rows of fp32 weights (a ~10-token query through MiniLM at ask time).
// OpenBLAS first copies all of W into its panel layout, which for T ≈ 10 costs more than the
// products; here W streams from memory once, 4 rows at a time through the register tile of
// `quantMatmul` (`multiplyTile`) while they sit in L1, with the output channels split
// across the threads. `matmulFewRowsPanels` does the same from weights packed once into
// 64-channel panels (MiniLM's), with no horizontal sums.

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
/// 1 ≤ T ≤ `matmulFewRowsLimit`. Each block of 4 rows × 64 output channels is 16 SIMD16
/// accumulators, fed per input channel by 4 loads of the panel and 4 broadcasts of x: no
/// horizontal sums, and the panel streams sequentially (W as stored would be read with a
/// stride of C floats per channel, which the prefetchers do not follow).
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
                var a00 = V(), a01 = V(), a02 = V(), a03 = V(), a10 = V(), a11 = V(), a12 = V(), a13 = V()
                var a20 = V(), a21 = V(), a22 = V(), a23 = V(), a30 = V(), a31 = V(), a32 = V(), a33 = V()
                var w = panel
                for c in 0..<C {
                    let w0 = w.loadUnaligned(as: V.self), w1 = w.loadUnaligned(fromByteOffset: 64, as: V.self)
                    let w2 = w.loadUnaligned(fromByteOffset: 128, as: V.self), w3 = w.loadUnaligned(fromByteOffset: 192, as: V.self)
                    var b = V(repeating: x0[c])
                    a00.addProduct(b, w0); a01.addProduct(b, w1); a02.addProduct(b, w2); a03.addProduct(b, w3)
                    b = V(repeating: x1[c])
                    a10.addProduct(b, w0); a11.addProduct(b, w1); a12.addProduct(b, w2); a13.addProduct(b, w3)
                    b = V(repeating: x2[c])
                    a20.addProduct(b, w0); a21.addProduct(b, w1); a22.addProduct(b, w2); a23.addProduct(b, w3)
                    b = V(repeating: x3[c])
                    a30.addProduct(b, w0); a31.addProduct(b, w1); a32.addProduct(b, w2); a33.addProduct(b, w3)
                    w += 256
                }
                func store(_ i: Int, _ v0: V, _ v1: V, _ v2: V, _ v3: V) {
                    guard i < nt else { return }
                    let out = UnsafeMutableRawPointer(y + (t + i) * OC + o)
                    let b = UnsafeRawPointer(bias.map { $0 + o })
                    func put(_ byte: Int, _ v: V) {
                        var r = v
                        if accumulate { r += out.loadUnaligned(fromByteOffset: byte, as: V.self) }
                        if let b { r += b.loadUnaligned(fromByteOffset: byte, as: V.self) }
                        out.storeBytes(of: r, toByteOffset: byte, as: V.self)
                    }
                    put(0, v0); put(64, v1); put(128, v2); put(192, v3)
                }
                store(0, a00, a01, a02, a03)
                store(1, a10, a11, a12, a13)
                store(2, a20, a21, a22, a23)
                store(3, a30, a31, a32, a33)
                t += nt
            }
        }
    }
}
