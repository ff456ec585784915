// Layer normalization over the channel dimension (BERT's post-attention and post-FFN
// norms), forward and backward, each with a naive Double twin for the tests.
// Follows llm.c `layernorm_forward` / `layernorm_backward` (biased variance, eps inside
// the square root). Rows are independent, so `out` may alias `x` (in place).
import Foundation
import Parallelism

/// What `layerNormBackward` needs from the forward: per-row mean and 1/std.
public struct LayerNormCache: Sendable {
    /// [T] mean of each row
    public var mean: [Float]
    /// [T] 1 / sqrt(var + eps) of each row
    public var rstd: [Float]
}

/// out[t, :] = (x[t, :] − mean_t) · rstd_t ⊙ weight + bias, rows in parallel.
/// - Parameters:
///   - out: [T, C] output (may be `x`)
///   - x: [T, C] input
///   - weight: [C] scale (gamma)
///   - bias: [C] shift (beta)
/// - Returns: the per-row mean and rstd when `cache` is true, else empty arrays.
@discardableResult
public func layerNormForward(
    _ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
    _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>,
    T: Int, C: Int, eps: Float, cache: Bool = false
) -> LayerNormCache {
    var mean = [Float](repeating: 0, count: cache ? T : 0)
    var rstd = mean
    let o = UnsafeSendable(out), i = UnsafeSendable(x), w = UnsafeSendable(weight), b = UnsafeSendable(bias)
    mean.withUnsafeMutableBufferPointer { mp in
        rstd.withUnsafeMutableBufferPointer { rp in
            let m = UnsafeSendable(mp), r = UnsafeSendable(rp)
            parallelRanges(T, minimum: 64) { rows in
                for t in rows {
                    let xr = i.value + t * C, yr = o.value + t * C
                    var sum: Float = 0
                    for c in 0..<C { sum += xr[c] }
                    let mu = sum / Float(C)
                    var sq: Float = 0
                    for c in 0..<C { let d = xr[c] - mu; sq += d * d }
                    let s = 1 / (sq / Float(C) + eps).squareRoot()
                    for c in 0..<C { yr[c] = (xr[c] - mu) * s * w.value[c] + b.value[c] }
                    if m.value.count > 0 { m.value[t] = mu; r.value[t] = s }
                }
            }
        }
    }
    return LayerNormCache(mean: mean, rstd: rstd)
}

/// Reference for `layerNormForward`, in Double.
public func layerNormForwardNaive(
    _ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
    _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>,
    T: Int, C: Int, eps: Float
) -> LayerNormCache {
    var cache = LayerNormCache(mean: [Float](repeating: 0, count: T), rstd: [Float](repeating: 0, count: T))
    for t in 0..<T {
        var mu = 0.0
        for c in 0..<C { mu += Double(x[t * C + c]) }
        mu /= Double(C)
        var v = 0.0
        for c in 0..<C { let d = Double(x[t * C + c]) - mu; v += d * d }
        v /= Double(C)
        let s = 1 / (v + Double(eps)).squareRoot()
        for c in 0..<C {
            out[t * C + c] = Float((Double(x[t * C + c]) - mu) * s * Double(weight[c]) + Double(bias[c]))
        }
        cache.mean[t] = Float(mu)
        cache.rstd[t] = Float(s)
    }
    return cache
}

/// Backward of `layerNormForward`; every gradient is accumulated (+=), and `dweight` /
/// `dbias` may be nil for a frozen norm.
/// - Parameters:
///   - dx: [T, C] gradient w.r.t. the input, accumulated
///   - dweight: [C] gradient w.r.t. the scale, accumulated
///   - dbias: [C] gradient w.r.t. the shift, accumulated
///   - dout: [T, C] upstream gradient
///   - x: [T, C] the forward input
///   - weight: [C] the scale
///   - cache: the forward's mean and rstd ([T] each)
public func layerNormBackward(
    dx: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>?, dbias: UnsafeMutablePointer<Float>?,
    dout: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    cache: LayerNormCache, T: Int, C: Int
) {
    for t in 0..<T {
        let xr = x + t * C, dyr = dout + t * C, dxr = dx + t * C
        let mu = cache.mean[t], s = cache.rstd[t]
        // dnorm = dout ⊙ weight; dx = rstd · (dnorm − mean(dnorm) − norm · mean(dnorm ⊙ norm))
        var dnormMean: Float = 0, dnormNormMean: Float = 0
        for c in 0..<C {
            let norm = (xr[c] - mu) * s
            let dnorm = weight[c] * dyr[c]
            dnormMean += dnorm
            dnormNormMean += dnorm * norm
        }
        dnormMean /= Float(C)
        dnormNormMean /= Float(C)
        for c in 0..<C {
            let norm = (xr[c] - mu) * s
            let dnorm = weight[c] * dyr[c]
            dxr[c] += (dnorm - dnormMean - norm * dnormNormMean) * s
            dweight?[c] += norm * dyr[c]
            dbias?[c] += dyr[c]
        }
    }
}

/// Reference for `layerNormBackward`, recomputing the statistics in Double.
public func layerNormBackwardNaive(
    dx: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>?, dbias: UnsafeMutablePointer<Float>?,
    dout: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    T: Int, C: Int, eps: Float
) {
    for t in 0..<T {
        var mu = 0.0
        for c in 0..<C { mu += Double(x[t * C + c]) }
        mu /= Double(C)
        var v = 0.0
        for c in 0..<C { let d = Double(x[t * C + c]) - mu; v += d * d }
        v /= Double(C)
        let s = 1 / (v + Double(eps)).squareRoot()
        let norm = (0..<C).map { (Double(x[t * C + $0]) - mu) * s }
        let dnorm = (0..<C).map { Double(weight[$0]) * Double(dout[t * C + $0]) }
        let a = dnorm.reduce(0, +) / Double(C)
        let b = zip(dnorm, norm).map { $0 * $1 }.reduce(0, +) / Double(C)
        for c in 0..<C {
            dx[t * C + c] += Float((dnorm[c] - a - norm[c] * b) * s)
            dweight?[c] += Float(norm[c] * Double(dout[t * C + c]))
            dbias?[c] += dout[t * C + c]
        }
    }
}
