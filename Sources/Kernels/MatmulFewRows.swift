// y = x · Wᵀ for a few rows of fp32 weights (a ~10-token query through MiniLM at ask time).
// OpenBLAS first copies all of W into its panel layout, which for T ≈ 10 costs more than the
// products; here W streams from memory once, 4 rows at a time through the register tile of
// `quantMatmul` (`multiplyTile`) while they sit in L1, with the output channels split
// across the threads.

/// Largest T for which `matmulForward` takes the few-rows path.
public let matmulFewRowsLimit = 16

/// y[T, OC] = x[T, C] · W[OC, C]ᵀ (+ y if `accumulate`), for 1 ≤ T ≤ `matmulFewRowsLimit`.
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
