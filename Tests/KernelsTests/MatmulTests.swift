import Testing
import TestSupport
import Kernels

/// Deterministic floats in [-1, 1), so failures reproduce.
func fill(_ n: Int, seed: UInt64) -> [Float] { SeededRandom.floats(n, seed: seed) }

@Suite struct MatmulTests {
    @Test(arguments: [(1, 7, 5), (4, 33, 17), (9, 64, 3)])
    func forwardMatchesNaive(shape: (Int, Int, Int)) {
        let (T, C, OC) = shape
        let x = fill(T * C, seed: 1), w = fill(OC * C, seed: 2), b = fill(OC, seed: 3)
        var fast = [Float](repeating: 0, count: T * OC), slow = fast
        matmulForward(&fast, x, w, b, T: T, C: C, OC: OC)
        matmulForwardNaive(&slow, x, w, b, T: T, C: C, OC: OC)
        let maxDiff = zip(fast, slow).map { abs($0 - $1) }.max()!
        #expect(maxDiff < 1e-4, "max |fast - naive| = \(maxDiff)")
    }

    /// Shapes of the few-rows path (T ≤ 16), including tails of 1, 2 and 3 rows, partial groups of output
    /// channels, channel counts that are not a multiple of 16, and accumulation into y.
    @Test(arguments: [(1, 16, 4), (3, 37, 7), (5, 48, 13), (6, 20, 9), (12, 384, 1152), (16, 1536, 384)])
    func fewRowsMatchNaive(shape: (Int, Int, Int)) {
        let (T, C, OC) = shape
        #expect(T <= matmulFewRowsLimit)
        let x = fill(T * C, seed: 7), w = fill(OC * C, seed: 8), b = fill(OC, seed: 9), y0 = fill(T * OC, seed: 10)
        for accumulate in [false, true] {
            var fast = y0, slow = y0
            matmulForward(&fast, x, w, b, T: T, C: C, OC: OC, accumulate: accumulate)
            matmulForwardNaive(&slow, x, w, b, T: T, C: C, OC: OC, accumulate: accumulate)
            let maxDiff = zip(fast, slow).map { abs($0 - $1) }.max()!
            #expect(maxDiff < 1e-4 * Float(C).squareRoot(), "T \(T) C \(C) OC \(OC) accumulate \(accumulate): max |fast - naive| = \(maxDiff)")
        }
    }

    /// Weights packed into 64-channel panels, with and without bias and accumulation.
    @Test(arguments: [(1, 16, 64), (3, 37, 128), (12, 384, 1152), (16, 1536, 384), (5, 24, 64), (6, 40, 64)])
    func panelsMatchNaive(shape: (Int, Int, Int)) {
        let (T, C, OC) = shape
        let x = fill(T * C, seed: 11), w = fill(OC * C, seed: 12), b = fill(OC, seed: 13), y0 = fill(T * OC, seed: 14)
        var panels = [Float](repeating: 0, count: OC * C)
        packPanels(w, OC: OC, C: C, into: &panels)
        for accumulate in [false, true] {
            for useBias in [false, true] {
                var fast = y0, slow = y0
                if useBias {
                    matmulFewRowsPanels(&fast, x, panels, b, T: T, C: C, OC: OC, accumulate: accumulate)
                    matmulForwardNaive(&slow, x, w, b, T: T, C: C, OC: OC, accumulate: accumulate)
                } else {
                    matmulFewRowsPanels(&fast, x, panels, nil, T: T, C: C, OC: OC, accumulate: accumulate)
                    matmulForwardNaive(&slow, x, w, nil, T: T, C: C, OC: OC, accumulate: accumulate)
                }
                let maxDiff = zip(fast, slow).map { abs($0 - $1) }.max()!
                #expect(maxDiff < 1e-4 * Float(C).squareRoot(), "T \(T) C \(C) OC \(OC) accumulate \(accumulate) bias \(useBias): max |fast - naive| = \(maxDiff)")
            }
        }
    }

    /// The panels' arithmetic, bit for bit: each output channel is w[c]·x[c] summed over c with
    /// one FMA per step, from zero (every tile width: T = 7 is 4 + 2 + 1 rows).
    @Test func panelsSumChannelByChannel() {
        let (T, C, OC) = (7, 40, 128)
        let x = fill(T * C, seed: 15), w = fill(OC * C, seed: 16)
        var panels = [Float](repeating: 0, count: OC * C), y = [Float](repeating: 0, count: T * OC)
        packPanels(w, OC: OC, C: C, into: &panels)
        matmulFewRowsPanels(&y, x, panels, nil, T: T, C: C, OC: OC)
        var expected = y
        for t in 0..<T {
            for o in 0..<OC {
                var s: Float = 0
                for c in 0..<C { s.addProduct(w[o * C + c], x[t * C + c]) }
                expected[t * OC + o] = s
            }
        }
        #expect(y.map(\.bitPattern) == expected.map(\.bitPattern))
    }

    @Test func backwardMatchesNaive() {
        let (T, C, OC) = (5, 12, 7)
        let x = fill(T * C, seed: 4), w = fill(OC * C, seed: 5), dy = fill(T * OC, seed: 6)
        var dx1 = [Float](repeating: 0, count: T * C), dx2 = dx1
        var dw1 = [Float](repeating: 0, count: OC * C), dw2 = dw1
        var db1 = [Float](repeating: 0, count: OC), db2 = db1
        matmulBackward(dx: &dx1, dw: &dw1, dbias: &db1, dy: dy, x: x, w: w, T: T, C: C, OC: OC)
        matmulBackwardNaive(dx: &dx2, dw: &dw2, dbias: &db2, dy: dy, x: x, w: w, T: T, C: C, OC: OC)
        for (a, b) in [(dx1, dx2), (dw1, dw2), (db1, db2)] {
            let d = zip(a, b).map { abs($0 - $1) }.max()!
            #expect(d < 1e-4, "max |fast - naive| = \(d)")
        }
    }
}
