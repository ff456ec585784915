import Foundation
import Testing
import Kernels

@Suite struct RMSNormTests {
    @Test func forwardMatchesNaive() {
        let (T, C) = (5, 67)
        let x = fill(T * C, seed: 11), w = fill(C, seed: 12)
        var a = [Float](repeating: 0, count: T * C), b = a
        var ra = [Float](repeating: 0, count: T), rb = ra
        rmsnormForward(&a, rstd: &ra, x, w, T: T, C: C, eps: 1e-5)
        rmsnormForwardNaive(&b, rstd: &rb, x, w, T: T, C: C, eps: 1e-5)
        let d = maxAbsDiff(a, b)
        #expect(d < 1e-5, "max |fast - naive| = \(d)")
    }

    @Test func backwardMatchesFiniteDifferences() {
        let (T, C) = (2, 9)
        let x = fill(T * C, seed: 13), w = fill(C, seed: 14), g = fill(T * C, seed: 15)
        var out = [Float](repeating: 0, count: T * C), rstd = [Float](repeating: 0, count: T)
        rmsnormForward(&out, rstd: &rstd, x, w, T: T, C: C, eps: 1e-5)
        var dx = [Float](repeating: 0, count: T * C)
        rmsnormBackward(dx: &dx, dweight: nil, dout: g, x: x, weight: w, rstd: rstd, T: T, C: C)
        var worst = 0.0
        for i in 0..<(T * C) {
            let fd = finiteDifference(x, i, h: 1e-3) { xx in
                var o = [Float](repeating: 0, count: T * C)
                rmsnormForwardNaive(&o, rstd: nil, xx, w, T: T, C: C, eps: 1e-5)
                return zip(o, g).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            }
            worst = max(worst, abs(fd - Double(dx[i])))
        }
        #expect(worst < 2e-3, "max |analytic - finite difference| = \(worst)")
    }
}

@Suite struct RoPETests {
    @Test func forwardMatchesNaiveAndBackwardInverts() {
        let (T, NH, HS) = (4, 3, 64)
        let stride = NH * HS + 5
        let positions = [0, 7, 100, 4097]
        let x = fill(T * stride, seed: 21)
        var a = x, b = x
        let table = RoPETable(positions: positions, dims: HS, base: 100000)
        ropeForward(&a, table: table, T: T, NH: NH, HS: HS, stride: stride)
        ropeForwardNaive(&b, positions: positions, dims: HS, base: 100000, NH: NH, HS: HS, stride: stride)
        let d = maxAbsDiff(a, b)
        #expect(d < 1e-5, "max |fast - naive| = \(d)")
        // the backward of a rotation is the inverse rotation
        ropeBackward(&a, table: table, T: T, NH: NH, HS: HS, stride: stride)
        let back = maxAbsDiff(a, x)
        #expect(back < 1e-5, "max |R⁻¹R x − x| = \(back)")
    }

    @Test func positionZeroIsIdentityAndPairsAreAdjacent() {
        var x: [Float] = [1, 0, 0, 1]
        let t = RoPETable(positions: [1], dims: 4, base: 10000)
        ropeForward(&x, table: t, T: 1, NH: 1, HS: 4, stride: 4)
        // pair 0 rotated by 1 rad: (cos 1, sin 1); pair 1 by 1e-2 rad: (−sin, cos)
        #expect(abs(x[0] - Float(cos(1.0))) < 1e-6 && abs(x[1] - Float(sin(1.0))) < 1e-6, "\(x)")
        #expect(abs(x[2] + Float(sin(0.01))) < 1e-6 && abs(x[3] - Float(cos(0.01))) < 1e-6, "\(x)")
    }
}

@Suite struct ActivationTests {
    @Test func vexpMatchesExp() {
        var worst: Float = 0
        var xs = (0..<4096).map { Float($0 - 2048) * 0.043 }
        xs += [-100, -87, 88, 0, -0.0, 1e-8]
        while xs.count % 16 != 0 { xs.append(0.5) }
        var y = xs
        vexpInPlace(&y, y.count)
        for (a, b) in zip(xs, y) {
            let e = Foundation.exp(Double(a))
            // below fp32's normal range (e < 2⁻¹²⁶) vexp flushes to 0: judge those absolutely
            let rel = abs(Double(b) - e) / max(e, 1e-30)
            worst = max(worst, Float(rel))
        }
        #expect(worst < 5e-7, "max relative error of vexp = \(worst)")
    }

    @Test func vexpOutsideItsRange() {
        let x = SIMD16<Float>(-.infinity, -1000, -87.5, 88.8, 1000, .infinity, -80, 80, 0, -0.0, 1, -1, 50, -50, 88, -87)
        let y = vexp(x)
        #expect(y[0] == 0 && y[1] == 0 && y[2] == 0, "\(y)")
        #expect(y[3] == .infinity && y[4] == .infinity && y[5] == .infinity, "\(y)")
        for i in 6..<16 {
            let e = Foundation.exp(Double(x[i]))
            #expect(abs(Double(y[i]) - e) <= 5e-7 * e, "vexp(\(x[i])) = \(y[i])")
        }
    }

    @Test func swigluMatchesNaiveAndFiniteDifferences() {
        let N = 53
        let g = fill(N, seed: 31).map { $0 * 6 }, u = fill(N, seed: 32)
        var a = [Float](repeating: 0, count: N), b = a
        swigluForward(&a, gate: g, up: u, N: N)
        swigluForwardNaive(&b, gate: g, up: u, N: N)
        let d = maxAbsDiff(a, b)
        #expect(d < 1e-5, "max |fast - naive| = \(d)")
        let dout = fill(N, seed: 33)
        var dg = [Float](repeating: 0, count: N), du = dg
        swigluBackward(dgate: &dg, dup: &du, dout: dout, gate: g, up: u, N: N)
        var worst = 0.0
        for i in 0..<N {
            let loss = { (gg: [Float], uu: [Float]) -> Double in
                var o = [Float](repeating: 0, count: N)
                swigluForwardNaive(&o, gate: gg, up: uu, N: N)
                return zip(o, dout).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            }
            let fdg = finiteDifference(g, i, h: 1e-3) { loss($0, u) }
            let fdu = finiteDifference(u, i, h: 1e-3) { loss(g, $0) }
            worst = max(worst, abs(fdg - Double(dg[i])), abs(fdu - Double(du[i])))
        }
        #expect(worst < 2e-3, "max |analytic - finite difference| = \(worst)")
    }

    @Test func softmaxMatchesNaive() {
        let (rows, n) = (7, 45)
        let x = fill(rows * n, seed: 41).map { $0 * 10 }
        var a = x, b = x
        softmaxForward(&a, rows: rows, n: n, valid: { $0 + 38 })
        softmaxForwardNaive(&b, rows: rows, n: n, valid: { $0 + 38 })
        let d = maxAbsDiff(a, b)
        #expect(d < 1e-6, "max |fast - naive| = \(d)")
    }

    @Test func argmaxAndTopK() {
        let x: [Float] = [0.5, 3, -1, 3, 2, 7, 0]
        #expect(argmax(x) == 5)
        #expect(topK(x, k: 4) == [5, 1, 3, 4])
    }
}
