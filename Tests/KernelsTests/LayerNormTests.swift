// LayerNorm: fast against naive, and backward against finite differences of a Double
// forward (loss = Σ out ⊙ g for a fixed random g).
import Testing
import Kernels

/// LayerNorm of one row in Double (the finite-difference oracle).
func layerNormRowDouble(_ x: [Double], _ w: [Double], _ b: [Double], eps: Double) -> [Double] {
    let C = Double(x.count)
    let mu = x.reduce(0, +) / C
    let v = x.map { ($0 - mu) * ($0 - mu) }.reduce(0, +) / C
    let s = 1 / (v + eps).squareRoot()
    return x.indices.map { (x[$0] - mu) * s * w[$0] + b[$0] }
}

@Suite struct LayerNormTests {
    @Test(arguments: [(1, 8), (5, 384), (130, 64)])
    func forwardMatchesNaive(shape: (Int, Int)) {
        let (T, C) = shape
        let x = fill(T * C, seed: 11).map { $0 * 3 + 0.5 }, w = fill(C, seed: 12), b = fill(C, seed: 13)
        var fast = [Float](repeating: 0, count: T * C), slow = fast
        let cf = layerNormForward(&fast, x, w, b, T: T, C: C, eps: 1e-12, cache: true)
        let cs = layerNormForwardNaive(&slow, x, w, b, T: T, C: C, eps: 1e-12)
        let d = zip(fast, slow).map { abs($0 - $1) }.max()!
        #expect(d < 1e-5, "max |fast - naive| = \(d)")
        let dm = zip(cf.mean, cs.mean).map { abs($0 - $1) }.max()!
        let dr = zip(cf.rstd, cs.rstd).map { abs($0 - $1) / $1 }.max()!
        #expect(dm < 1e-5 && dr < 1e-5, "mean diff \(dm), rstd rel diff \(dr)")
        // In place gives the same result.
        var inPlace = x
        inPlace.withUnsafeMutableBufferPointer { p in
            _ = layerNormForward(p.baseAddress!, p.baseAddress!, w, b, T: T, C: C, eps: 1e-12)
        }
        #expect(inPlace == fast)
    }

    @Test func backwardMatchesNaiveAndFiniteDifferences() {
        let (T, C) = (3, 16)
        let eps: Float = 1e-5
        let x = fill(T * C, seed: 21).map { $0 * 2 }, w = fill(C, seed: 22), b = fill(C, seed: 23)
        let g = fill(T * C, seed: 24)
        var out = [Float](repeating: 0, count: T * C)
        let cache = layerNormForward(&out, x, w, b, T: T, C: C, eps: eps, cache: true)

        var dx = [Float](repeating: 0, count: T * C), dw = [Float](repeating: 0, count: C), db = dw
        layerNormBackward(dx: &dx, dweight: &dw, dbias: &db, dout: g, x: x, weight: w, cache: cache, T: T, C: C)
        var dx2 = [Float](repeating: 0, count: T * C), dw2 = [Float](repeating: 0, count: C), db2 = dw2
        layerNormBackwardNaive(dx: &dx2, dweight: &dw2, dbias: &db2, dout: g, x: x, weight: w, T: T, C: C, eps: eps)
        for (name, a, r) in [("dx", dx, dx2), ("dw", dw, dw2), ("db", db, db2)] {
            let d = zip(a, r).map { abs($0 - $1) }.max()!
            #expect(d < 1e-5, "\(name): max |fast - naive| = \(d)")
        }

        // Central differences of L = Σ out ⊙ g in Double.
        let xd = x.map(Double.init), wd = w.map(Double.init), bd = b.map(Double.init), gd = g.map(Double.init)
        func loss(_ x: [Double], _ w: [Double], _ b: [Double]) -> Double {
            var l = 0.0
            for t in 0..<T {
                let y = layerNormRowDouble(Array(x[t * C..<(t + 1) * C]), w, b, eps: Double(eps))
                for c in 0..<C { l += y[c] * gd[t * C + c] }
            }
            return l
        }
        let h = 1e-6
        var worst = 0.0
        for i in 0..<(T * C) {
            var p = xd, m = xd; p[i] += h; m[i] -= h
            let num = (loss(p, wd, bd) - loss(m, wd, bd)) / (2 * h)
            worst = max(worst, abs(num - Double(dx[i])))
        }
        for c in 0..<C {
            var p = wd, m = wd; p[c] += h; m[c] -= h
            worst = max(worst, abs((loss(xd, p, bd) - loss(xd, m, bd)) / (2 * h) - Double(dw[c])))
            var pb = bd, mb = bd; pb[c] += h; mb[c] -= h
            worst = max(worst, abs((loss(xd, wd, pb) - loss(xd, wd, mb)) / (2 * h) - Double(db[c])))
        }
        #expect(worst < 1e-4, "max |analytic - finite difference| = \(worst)")
    }
}
