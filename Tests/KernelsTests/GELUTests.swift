// GELU (erf): the fast erf against libm, fast against naive, backward against finite
// differences of the Double forward.
import Foundation
import Testing
import Kernels

@Suite struct GELUTests {
    @Test func fastErfMatchesLibm() {
        var worst: Double = 0
        var at: Float = 0
        for i in -80_000...80_000 {
            let x = Float(i) / 10_000  // [-8, 8]
            let d = abs(Double(fastErf(x)) - erf(Double(x)))
            if d > worst { worst = d; at = x }
        }
        #expect(worst < 5e-7, "max |fastErf - erf| = \(worst) at x = \(at)")
    }

    @Test func vectorErfEqualsScalarErf() {
        let x = fill(4096, seed: 33).map { $0 * 6 } + [-.infinity, .infinity, -4, 4, -4.0001, 4.0001, 0, -0.0]
        for k in stride(from: 0, to: x.count, by: 8) {
            let lanes = fastErf(SIMD8<Float>(x[k..<k + 8]))
            for l in 0..<8 { #expect(lanes[l] == fastErf(x[k + l]), "x = \(x[k + l])") }
        }
    }

    @Test(arguments: [1, 7, 100_003])
    func forwardMatchesNaive(n: Int) {
        let x = fill(n, seed: 31).map { $0 * 6 }
        var fast = [Float](repeating: 0, count: n), slow = fast
        geluForward(&fast, x, N: n)
        geluForwardNaive(&slow, x, N: n)
        // |x| ≤ 6 here: 2e-6 is a few ulp of the output.
        let d = zip(fast, slow).map { abs($0 - $1) }.max()!
        #expect(d < 2e-6, "max |fast - naive| = \(d)")
    }

    @Test func backwardMatchesNaiveAndFiniteDifferences() {
        let n = 257
        let x = fill(n, seed: 41).map { $0 * 5 }, g = fill(n, seed: 42)
        var dx = [Float](repeating: 0, count: n), dx2 = dx
        geluBackward(dx: &dx, dout: g, x: x, N: n)
        geluBackwardNaive(dx: &dx2, dout: g, x: x, N: n)
        let d = zip(dx, dx2).map { abs($0 - $1) }.max()!
        #expect(d < 1e-6, "max |fast - naive| = \(d)")

        func gelu(_ v: Double) -> Double { 0.5 * v * (1 + erf(v / 2.0.squareRoot())) }
        let h = 1e-6
        var worst = 0.0
        for i in 0..<n {
            let v = Double(x[i])
            let num = Double(g[i]) * (gelu(v + h) - gelu(v - h)) / (2 * h)
            worst = max(worst, abs(num - Double(dx[i])))
        }
        #expect(worst < 1e-5, "max |analytic - finite difference| = \(worst)")
    }
}
