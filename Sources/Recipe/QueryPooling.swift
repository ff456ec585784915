// Query pooling (`RecipeConfig.queryTokens`, `queryPoolingHeads`; this project's addition),
// forward and backward side by side. The query head's hidden layer gains
//
//   h += W_p [y_1 … y_H],   y_j = p_j / ‖p_j‖,   p_j = Σ_t a_jt e_t,
//   a_j = softmax_t(e_t·u_j / √D + b_j[bucket(t)])
//
// over the encoder's hidden states e_t of the query's last n ≤ T tokens (the last is [SEP]),
// bucket(t) = min(distance from the end, 7), as the prompt transformer's attention over the
// statement. The input rows are `BertEncoder.featureMatrix(_:lastTokens:)`'s:
// [F features | n | T × D states]. W_p starts at zero, so a converted editor scores as
// before; u_j and b_j get gradients once W_p has moved.
import Foundation
import Kernels

/// What the pooling's backward needs (the token states stay in the head's input rows).
public struct QueryPoolCache {
    /// [N, H, T] attention weights
    var attention: [Float]
    /// [N, H·D] the pooled vectors scaled to unit norm (W_p's input)
    var normalized: [Float]
    /// [N·H] ‖p_j‖ (0: nothing pooled, no gradient)
    var norms: [Float]
}

enum QueryPooling {
    /// The pooled, normalized vectors [N, H·D] of N input rows, and what the backward needs.
    static func forward(_ params: RecipeParameters, rows: UnsafePointer<Float>, N: Int) -> QueryPoolCache {
        let c = params.config
        let F = c.featureWidth, D = F / 4, T = c.queryTokens, H = c.queryPoolingHeads, W = c.queryInputWidth
        let buckets = RecipeConfig.positionBuckets, invSqrtD = 1 / Float(D).squareRoot()
        let u = params[.queryPoolQuery], bias = params[.queryPoolPositionBias]
        var cache = QueryPoolCache(attention: [Float](repeating: 0, count: N * H * T),
                                   normalized: [Float](repeating: 0, count: N * H * D), norms: [Float](repeating: 0, count: N * H))
        for i in 0..<N {
            let row = rows + i * W, n = min(T, max(0, Int(row[F])))
            let e = row + F + 1
            guard n > 0 else { continue }
            for j in 0..<H {
                let q = u.baseAddress! + j * D
                var a = (0..<n).map { t -> Float in
                    dot(e + t * D, q, D) * invSqrtD + bias[j * buckets + min(n - 1 - t, buckets - 1)]
                }
                let m = a.max()!
                var sum: Float = 0
                for t in a.indices { a[t] = expf(a[t] - m); sum += a[t] }
                let o = (i * H + j) * D
                cache.normalized.withUnsafeMutableBufferPointer { y in
                    let p = y.baseAddress! + o
                    for t in 0..<n {
                        let w = a[t] / sum
                        cache.attention[(i * H + j) * T + t] = w
                        let et = e + t * D
                        for k in 0..<D { p[k] += w * et[k] }
                    }
                    let norm = dot(p, p, D).squareRoot()
                    cache.norms[i * H + j] = norm
                    let inv = norm > 0 ? 1 / norm : 0
                    for k in 0..<D { p[k] *= inv }
                }
            }
        }
        return cache
    }

    /// The head's hidden layer h [N, R] += W_p · normalized.
    static func addToHidden(_ params: RecipeParameters, _ h: inout [Float], cache: QueryPoolCache, N: Int) {
        let c = params.config, HD = c.queryPoolingHeads * c.featureWidth / 4
        h.withUnsafeMutableBufferPointer { y in
            matmulForward(y.baseAddress!, cache.normalized, params.pointer(.queryPoolW), nil, T: N, C: HD,
                          OC: c.representationWidth, accumulate: true)
        }
    }

    /// Accumulates the gradients of W_p, the attention queries u_j and the position biases
    /// b_j, given dh [N, R] (the hidden layer's gradient).
    static func backward(_ params: RecipeParameters, _ grads: RecipeParameters, dHidden dh: [Float], rows: UnsafePointer<Float>,
                         cache: QueryPoolCache, N: Int) {
        let c = params.config
        let F = c.featureWidth, D = F / 4, T = c.queryTokens, H = c.queryPoolingHeads, W = c.queryInputWidth
        let buckets = RecipeConfig.positionBuckets, invSqrtD = 1 / Float(D).squareRoot()
        var dy = [Float](repeating: 0, count: N * H * D)
        matmulBackward(dx: &dy, dw: grads.pointer(.queryPoolW), dbias: nil, dy: dh, x: cache.normalized,
                       w: params.pointer(.queryPoolW), T: N, C: H * D, OC: c.representationWidth)
        let du = grads[.queryPoolQuery], db = grads[.queryPoolPositionBias]
        for i in 0..<N {
            let row = rows + i * W, n = min(T, max(0, Int(row[F])))
            let e = row + F + 1
            for j in 0..<H where n > 0 && cache.norms[i * H + j] > 0 {
                let o = (i * H + j) * D, norm = cache.norms[i * H + j]
                // y = p/‖p‖: dp = (dy − y (y·dy)) / ‖p‖
                let dp: [Float] = cache.normalized.withUnsafeBufferPointer { yb in
                    dy.withUnsafeBufferPointer { gb in
                        let y = yb.baseAddress! + o, g = gb.baseAddress! + o
                        let yg = dot(y, g, D)
                        return (0..<D).map { (g[$0] - y[$0] * yg) / norm }
                    }
                }
                // softmax: d score_t = a_t (dp·e_t − Σ_s a_s dp·e_s)
                let g = (0..<n).map { t in dp.withUnsafeBufferPointer { dot(e + t * D, $0.baseAddress!, D) } }
                let a = (0..<n).map { cache.attention[(i * H + j) * T + $0] }
                let mean = zip(a, g).reduce(0) { $0 + $1.0 * $1.1 }
                let dq = du.baseAddress! + j * D
                for t in 0..<n {
                    let ds = a[t] * (g[t] - mean)
                    db[j * buckets + min(n - 1 - t, buckets - 1)] += ds
                    let et = e + t * D
                    for k in 0..<D { dq[k] += ds * invSqrtD * et[k] }
                }
            }
        }
    }

    private static func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) -> Float {
        var s: Float = 0
        for k in 0..<n { s += x[k] * y[k] }
        return s
    }
}
