// GELU with the exact erf (BERT's "gelu", not the tanh approximation), forward and
// backward, with a naive twin on Foundation's `erf` in Double.
//
// The fast forward evaluates erf with the rational approximation used by Eigen and XLA
// (`generic_fast_erf_float`: x·P(x²)/Q(x²) on x clamped to [−4, 4]; |error| < 5e-7 in Float
// against erf): no libm call, so the loop vectorizes. Backward needs only the forward
// input, which the caller keeps (elementwise: there is no other state to cache).
import Foundation
import Parallelism

/// erf(x) for Float, |error| < 5e-7 (a few ulp), branch-free (vectorizable).
@inlinable @inline(__always)
public func fastErf(_ xIn: Float) -> Float {
    let x = xIn < -4 ? -4 : (xIn > 4 ? 4 : xIn)
    let x2 = x * x
    var p: Float = -2.72614225801306e-10
    p = p * x2 + 2.77068142495902e-08
    p = p * x2 + -2.10102402082508e-06
    p = p * x2 + -5.69250639462346e-05
    p = p * x2 + -7.34990630326855e-04
    p = p * x2 + -2.95459980854025e-03
    p = p * x2 + -1.60960333262415e-02
    var q: Float = -1.45660718464996e-05
    q = q * x2 + -2.13374055278905e-04
    q = q * x2 + -1.68282697438203e-03
    q = q * x2 + -7.37332916720468e-03
    q = q * x2 + -1.42647390514189e-02
    return x * p / q
}

/// `fastErf` on 8 lanes: the same operations in the same order, so it returns exactly
/// what `fastErf` returns lane by lane.
@inlinable @inline(__always)
public func fastErf(_ xIn: SIMD8<Float>) -> SIMD8<Float> {
    let x = xIn.clamped(lowerBound: SIMD8(repeating: -4), upperBound: SIMD8(repeating: 4))
    let x2 = x * x
    var p = SIMD8<Float>(repeating: -2.72614225801306e-10)
    p = p * x2 + 2.77068142495902e-08
    p = p * x2 + -2.10102402082508e-06
    p = p * x2 + -5.69250639462346e-05
    p = p * x2 + -7.34990630326855e-04
    p = p * x2 + -2.95459980854025e-03
    p = p * x2 + -1.60960333262415e-02
    var q = SIMD8<Float>(repeating: -1.45660718464996e-05)
    q = q * x2 + -2.13374055278905e-04
    q = q * x2 + -1.68282697438203e-03
    q = q * x2 + -7.37332916720468e-03
    q = q * x2 + -1.42647390514189e-02
    return x * p / q
}

/// out[i] = 0.5 · x[i] · (1 + erf(x[i] / √2)), 8 lanes at a time, in parallel chunks.
/// (In debug builds SIMD types are not optimized, each lane operation being a generic
/// call, and the 8-lane loop is 15× slower than scalar code, so `-Onone` runs the scalar
/// loop: the same operations in the same order, hence the same results.)
/// - Parameters:
///   - out: [N] output (may be `x`)
///   - x: [N] input
public func geluForward(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, N: Int) {
    let o = UnsafeSendable(out), i = UnsafeSendable(x)
    parallelRanges(N, minimum: 1 << 15) { r in
        let y = UnsafeMutableRawPointer(o.value), v = UnsafeRawPointer(i.value)
        let invSqrt2: Float = 0.70710678118654752
        var k = r.lowerBound
        #if DEBUG
        let vectorEnd = k
        #else
        let vectorEnd = r.upperBound
        #endif
        while k + 8 <= vectorEnd {
            let xv = v.loadUnaligned(fromByteOffset: 4 * k, as: SIMD8<Float>.self)
            let g = 0.5 * xv * (1 + fastErf(xv * invSqrt2))
            y.storeBytes(of: g, toByteOffset: 4 * k, as: SIMD8<Float>.self)
            k += 8
        }
        while k < r.upperBound {
            let xv = i.value[k]
            o.value[k] = 0.5 * xv * (1 + fastErf(xv * invSqrt2))
            k += 1
        }
    }
}

/// Reference for `geluForward`, with libm `erf` in Double.
public func geluForwardNaive(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, N: Int) {
    for k in 0..<N {
        let v = Double(x[k])
        out[k] = Float(0.5 * v * (1 + erf(v / 2.0.squareRoot())))
    }
}

/// Backward of `geluForward`: dx[i] += dout[i] · (Φ(x) + x · φ(x)), with Φ the normal CDF
/// and φ its density.
/// - Parameters:
///   - dx: [N] gradient w.r.t. the input, accumulated
///   - dout: [N] upstream gradient
///   - x: [N] the forward input
public func geluBackward(dx: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, x: UnsafePointer<Float>, N: Int) {
    let invSqrt2: Float = 0.70710678118654752
    let invSqrt2Pi: Float = 0.39894228040143268
    for k in 0..<N {
        let v = x[k]
        let cdf = 0.5 * (1 + fastErf(v * invSqrt2))
        let pdf = invSqrt2Pi * expf(-0.5 * v * v)
        dx[k] += dout[k] * (cdf + v * pdf)
    }
}

/// Reference for `geluBackward`, in Double with libm `erf` and `exp`.
public func geluBackwardNaive(dx: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, x: UnsafePointer<Float>, N: Int) {
    for k in 0..<N {
        let v = Double(x[k])
        let cdf = 0.5 * (1 + erf(v / 2.0.squareRoot()))
        let pdf = exp(-0.5 * v * v) / (2 * Double.pi).squareRoot()
        dx[k] += Float(Double(dout[k]) * (cdf + v * pdf))
    }
}
