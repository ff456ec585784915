// RMSNorm (Llama's pre-norm): out = x / sqrt(mean(x²) + eps) ⊙ weight, row by row.
// Follows llm.c's layernorm_forward/backward layout: the forward saves rstd[T] for backward.
import Parallelism

/// What `rmsnormBackward` needs from the forward: the reciprocal rms of each row.
public struct RMSNormCache {
    /// [T] 1 / sqrt(mean(x²) + eps)
    public var rstd: [Float]
    public init(T: Int) { rstd = [Float](repeating: 0, count: T) }
}

/// - Parameters:
///   - out: [T, C] normalized and scaled rows (may alias `x`)
///   - rstd: [T] reciprocal rms per row (saved for backward), or nil at inference
///   - x: [T, C] input rows
///   - weight: [C] per-channel scale
@inlinable
public func rmsnormForward(
    _ out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>?,
    _ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, T: Int, C: Int, eps: Float
) {
    for t in 0..<T {
        let xr = x + t * C, o = out + t * C
        var acc = SIMD16<Float>(), c = 0
        while c + 16 <= C {
            let v = UnsafeRawPointer(xr + c).loadUnaligned(as: SIMD16<Float>.self)
            acc.addProduct(v, v); c += 16
        }
        var ss = acc.sum()
        while c < C { ss += xr[c] * xr[c]; c += 1 }
        let r = 1 / (ss / Float(C) + eps).squareRoot()
        rstd?[t] = r
        c = 0
        while c + 16 <= C {
            let v = UnsafeRawPointer(xr + c).loadUnaligned(as: SIMD16<Float>.self)
            let w = UnsafeRawPointer(weight + c).loadUnaligned(as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(o + c).storeBytes(of: v * r * w, as: SIMD16<Float>.self); c += 16
        }
        while c < C { o[c] = xr[c] * r * weight[c]; c += 1 }
    }
}

/// Reference for `rmsnormForward`, accumulating in Double.
public func rmsnormForwardNaive(
    _ out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>?,
    _ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, T: Int, C: Int, eps: Float
) {
    for t in 0..<T {
        var ss = 0.0
        for c in 0..<C { ss += Double(x[t * C + c]) * Double(x[t * C + c]) }
        let r = 1 / (ss / Double(C) + Double(eps)).squareRoot()
        rstd?[t] = Float(r)
        for c in 0..<C { out[t * C + c] = Float(Double(x[t * C + c]) * r * Double(weight[c])) }
    }
}

/// Backward of `rmsnormForward` w.r.t. the input (the weight is frozen; `dweight` optional).
/// With n = x·rstd: dx = rstd · (w⊙dout − n · mean(n ⊙ w⊙dout)).
/// - Parameters:
///   - dx: [T, C] gradient w.r.t. x, accumulated (+=)
///   - dweight: [C] gradient w.r.t. the weight, accumulated, or nil
///   - dout: [T, C] upstream gradient
///   - x: [T, C] the forward input
///   - weight: [C] the scale
///   - rstd: [T] saved by the forward
public func rmsnormBackward(
    dx: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>?,
    dout: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    rstd: UnsafePointer<Float>, T: Int, C: Int
) {
    for t in 0..<T {
        let r = rstd[t], xr = x + t * C, dr = dout + t * C, dxr = dx + t * C
        var dot: Float = 0  // Σ n_c · w_c · dout_c
        for c in 0..<C { dot += xr[c] * r * weight[c] * dr[c] }
        let meanDot = dot / Float(C)
        for c in 0..<C {
            let n = xr[c] * r
            dxr[c] += r * (weight[c] * dr[c] - n * meanDot)
            dweight?[c] += n * dr[c]
        }
    }
}

/// `rmsnormBackward` for a frozen weight (no `dweight`), vectorized and split across
/// threads by rows; `rmsnormBackward` is its reference in the tests.
/// - Parameters:
///   - dx: [T, C] gradient w.r.t. x, accumulated (+=)
///   - dout: [T, C] upstream gradient
///   - x: [T, C] the forward input
///   - weight: [C] the scale
///   - rstd: [T] saved by the forward
public func rmsnormBackwardRows(
    dx: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, x: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, rstd: UnsafePointer<Float>, T: Int, C: Int
) {
    let dxS = UnsafeSendable(dx), doS = UnsafeSendable(dout), xS = UnsafeSendable(x)
    let wS = UnsafeSendable(weight), rS = UnsafeSendable(rstd)
    parallelRanges(T, minimum: 16) { range in
        let w = wS.value
        for t in range {
            let r = rS.value[t], xr = xS.value + t * C, dr = doS.value + t * C, dxr = dxS.value + t * C
            // Σ x_c · w_c · dout_c (times r below gives Σ n_c · w_c · dout_c)
            var acc = SIMD16<Float>(), c = 0
            while c + 16 <= C {
                let xv = UnsafeRawPointer(xr + c).loadUnaligned(as: SIMD16<Float>.self)
                let wv = UnsafeRawPointer(w + c).loadUnaligned(as: SIMD16<Float>.self)
                let dv = UnsafeRawPointer(dr + c).loadUnaligned(as: SIMD16<Float>.self)
                acc.addProduct(xv * wv, dv)
                c += 16
            }
            var s = acc.sum()
            while c < C { s += xr[c] * w[c] * dr[c]; c += 1 }
            // dx += r·w⊙dout − x · r³ · s / C
            let k = r * r * r * s / Float(C)
            c = 0
            while c + 16 <= C {
                let xv = UnsafeRawPointer(xr + c).loadUnaligned(as: SIMD16<Float>.self)
                let wv = UnsafeRawPointer(w + c).loadUnaligned(as: SIMD16<Float>.self)
                let dv = UnsafeRawPointer(dr + c).loadUnaligned(as: SIMD16<Float>.self)
                var o = UnsafeRawPointer(dxr + c).loadUnaligned(as: SIMD16<Float>.self)
                o.addProduct(wv * dv, SIMD16(repeating: r))
                o.addProduct(xv, SIMD16(repeating: -k))
                UnsafeMutableRawPointer(dxr + c).storeBytes(of: o, as: SIMD16<Float>.self)
                c += 16
            }
            while c < C { dxr[c] += r * w[c] * dr[c] - xr[c] * k; c += 1 }
        }
    }
}
