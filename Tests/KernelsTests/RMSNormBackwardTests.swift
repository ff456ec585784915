// The vectorized, threaded RMSNorm input backward against the scalar reference.
import Testing
import Kernels

@Suite struct RMSNormBackwardTests {
    @Test(arguments: [(37, 67), (64, 576), (1, 16)])
    func rowsMatchScalarBackward(shape: (Int, Int)) {
        let (T, C) = shape
        let x = fill(T * C, seed: 81), w = fill(C, seed: 82), g = fill(T * C, seed: 83), start = fill(T * C, seed: 84)
        var out = [Float](repeating: 0, count: T * C), rstd = [Float](repeating: 0, count: T)
        rmsnormForward(&out, rstd: &rstd, x, w, T: T, C: C, eps: 1e-5)
        var fast = start, slow = start  // both accumulate onto what is there
        rmsnormBackwardRows(dx: &fast, dout: g, x: x, weight: w, rstd: rstd, T: T, C: C)
        rmsnormBackward(dx: &slow, dweight: nil, dout: g, x: x, weight: w, rstd: rstd, T: T, C: C)
        let d = maxAbsDiff(fast, slow)
        print("RMSNormBackwardTests T=\(T) C=\(C): max |rows − scalar| = \(d)")
        #expect(d < 1e-5, "max |rows − scalar| = \(d)")
    }
}
