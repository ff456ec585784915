// SwiGLU's row-wise backward (fused gate|up layout) against the scalar backward, its Double
// twin and central finite differences.
import Testing
import Kernels

@Suite struct SwiGLUBackwardTests {
    @Test func rowsBackwardMatchesScalarNaiveAndFiniteDifferences() {
        let (T, FF) = (5, 37)  // FF not a multiple of 16: exercises the tail loop
        let gateUp = fill(T * 2 * FF, seed: 61).map { $0 * 4 }, dout = fill(T * FF, seed: 62)
        var dgu = [Float](repeating: .nan, count: T * 2 * FF)  // overwritten, whatever was there
        swigluBackwardRows(dgateUp: &dgu, dout: dout, gateUp: gateUp, T: T, FF: FF)
        var scalar = [Float](repeating: 0, count: T * 2 * FF), naive = scalar
        for t in 0..<T {
            gateUp.withUnsafeBufferPointer { gu in
                dout.withUnsafeBufferPointer { d in
                    scalar.withUnsafeMutableBufferPointer { s in
                        let g = gu.baseAddress! + t * 2 * FF, o = s.baseAddress! + t * 2 * FF
                        swigluBackward(dgate: o, dup: o + FF, dout: d.baseAddress! + t * FF, gate: g, up: g + FF, N: FF)
                    }
                    naive.withUnsafeMutableBufferPointer { s in
                        let g = gu.baseAddress! + t * 2 * FF, o = s.baseAddress! + t * 2 * FF
                        swigluBackwardNaive(dgate: o, dup: o + FF, dout: d.baseAddress! + t * FF, gate: g, up: g + FF, N: FF)
                    }
                }
            }
        }
        let dScalar = maxAbsDiff(dgu, scalar), dNaive = maxAbsDiff(dgu, naive)
        #expect(dScalar < 1e-5, "max |rows − scalar| = \(dScalar)")
        #expect(dNaive < 1e-5, "max |rows − naive| = \(dNaive)")
        // finite differences of Σ dout ⊙ swiglu(gate, up)
        func loss(_ gu: [Float]) -> Double {
            var out = [Float](repeating: 0, count: T * FF)
            for t in 0..<T {
                gu.withUnsafeBufferPointer { p in
                    out.withUnsafeMutableBufferPointer { o in
                        let g = p.baseAddress! + t * 2 * FF
                        swigluForwardNaive(o.baseAddress! + t * FF, gate: g, up: g + FF, N: FF)
                    }
                }
            }
            return zip(out, dout).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        var worst = 0.0
        for i in 0..<(T * 2 * FF) {
            let fd = finiteDifference(gateUp, i, h: 1e-2, loss)
            worst = max(worst, relativeError(Double(dgu[i]), fd, floor: 1e-2))
        }
        print("SwiGLUBackwardTests: max |rows − scalar| = \(dScalar), |rows − naive| = \(dNaive), max rel err vs finite differences = \(worst)")
        #expect(worst < 1e-3, "max relative error vs finite differences = \(worst)")
    }

    @Test func matmulBackwardInputMatchesNaive() {
        let (T, C, OC) = (6, 19, 11)
        let dy = fill(T * OC, seed: 71), w = fill(OC * C, seed: 72), x = fill(T * C, seed: 73)
        var fast = [Float](repeating: 7, count: T * C), slow = [Float](repeating: 0, count: T * C)
        matmulBackwardInput(dx: &fast, dy: dy, w: w, T: T, C: C, OC: OC)  // overwrites the 7s
        matmulBackwardNaive(dx: &slow, dw: nil, dbias: nil, dy: dy, x: x, w: w, T: T, C: C, OC: OC)
        #expect(maxAbsDiff(fast, slow) < 1e-5, "max |fast − naive| = \(maxAbsDiff(fast, slow))")
        var acc = slow
        matmulBackwardInput(dx: &acc, dy: dy, w: w, T: T, C: C, OC: OC, accumulate: true)
        #expect(maxAbsDiff(acc, slow.map { 2 * $0 }) < 1e-5)
    }
}
