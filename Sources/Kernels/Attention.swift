// Causal grouped-query attention over a KV cache (llm.c attention_forward, with GQA and a
// past). Query head h reads kv head h / (NH / NKV). The T queries sit at absolute positions
// past..<past+T with past = Tk − T, so query t sees keys 0...past+t.
//
// Prefill: per head, scores = Q_h·K_gᵀ and out = P·V_g through cblas_sgemm on strided
// views (no copies). Decode (T == 1): a SIMD dot-product loop per head.
import COpenBLAS
import Foundation
import Parallelism

/// - Parameters:
///   - out: [T, outStride] output; head h is written at columns h·HS..<(h+1)·HS
///   - att: [NH, T, Tk] attention probabilities (saved for backward; zero above the diagonal)
///   - q: [T, qStride] queries; head h at columns h·HS
///   - k: [Tk, kvStride] keys (the cache); kv head g at columns g·HS
///   - v: [Tk, kvStride] values, same layout as k
public func attentionForward(
    out: UnsafeMutablePointer<Float>, outStride: Int, att: UnsafeMutablePointer<Float>,
    q: UnsafePointer<Float>, qStride: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>, kvStride: Int,
    T: Int, Tk: Int, NH: Int, NKV: Int, HS: Int
) {
    let past = Tk - T
    let group = NH / NKV
    let scale = 1 / Float(HS).squareRoot()
    if T == 1 {
        attentionDecode(out: out, att: att, q: q, k: k, v: v, kvStride: kvStride, Tk: Tk, NH: NH, NKV: NKV, HS: HS)
        return
    }
    BLASThreads.sync()
    let attS = UnsafeSendable(att)
    // Queries in blocks of 64 rows: block [t0, t1) needs only keys 0..<past+t1, which halves
    // the work of a long causal prefill. Columns past the block's keys are zeroed by the softmax.
    let block = 64
    for h in 0..<NH {
        let g = h / group
        var t0 = 0
        while t0 < T {
            let t1 = min(T, t0 + block), keys = past + t1
            // s[t0..<t1, 0..<keys] = scale · Q_h[t0..<t1, HS] · K_g[keys, HS]ᵀ
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(t1 - t0), Int32(keys), Int32(HS),
                        scale, q + t0 * qStride + h * HS, Int32(qStride), k + g * HS, Int32(kvStride),
                        0, att + h * T * Tk + t0 * Tk, Int32(Tk))
            t0 = t1
        }
    }
    // causal softmax, all heads' rows in parallel
    parallelRanges(NH * T, minimum: 16) { r in
        for row in r {
            let t = row % T
            let p = attS.value + row * Tk
            let m = past + t + 1
            softmaxRow(p, m)
            for i in m..<Tk { p[i] = 0 }
        }
    }
    for h in 0..<NH {
        let g = h / group
        var t0 = 0
        while t0 < T {
            let t1 = min(T, t0 + block), keys = past + t1
            // out_h[t0..<t1, HS] = P[t0..<t1, keys] · V_g[keys, HS]
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(t1 - t0), Int32(HS), Int32(keys),
                        1, att + h * T * Tk + t0 * Tk, Int32(Tk), v + g * HS, Int32(kvStride),
                        0, out + t0 * outStride + h * HS, Int32(outStride))
            t0 = t1
        }
    }
}

/// The T == 1 case of `attentionForward`: one query row against Tk cached keys.
/// - Parameters:
///   - out: [NH·HS]
///   - att: [NH, Tk] probabilities
///   - q: [NH·HS]
///   - k, v: [Tk, kvStride]
public func attentionDecode(
    out: UnsafeMutablePointer<Float>, att: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>,
    k: UnsafePointer<Float>, v: UnsafePointer<Float>, kvStride: Int, Tk: Int, NH: Int, NKV: Int, HS: Int
) {
    let group = NH / NKV
    let scale = 1 / Float(HS).squareRoot()
    let o = UnsafeSendable(out), a = UnsafeSendable(att)
    let work = { (h: Int) in
        let g = h / group
        let qh = q + h * HS, p = a.value + h * Tk, oh = o.value + h * HS
        for t in 0..<Tk { p[t] = scale * dot(qh, k + t * kvStride + g * HS, HS) }
        softmaxRow(p, Tk)
        for i in 0..<HS { oh[i] = 0 }
        for t in 0..<Tk { axpy(oh, p[t], v + t * kvStride + g * HS, HS) }
    }
    if Tk >= 256 { parallelFor(NH, work) } else { for h in 0..<NH { work(h) } }
}

/// Reference for `attentionForward`, in Double, one scalar loop per score.
public func attentionForwardNaive(
    out: UnsafeMutablePointer<Float>, outStride: Int,
    q: UnsafePointer<Float>, qStride: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>, kvStride: Int,
    T: Int, Tk: Int, NH: Int, NKV: Int, HS: Int
) {
    let past = Tk - T
    let scale = 1 / Double(HS).squareRoot()
    for h in 0..<NH {
        let g = h / (NH / NKV)
        for t in 0..<T {
            let m = past + t + 1
            var s = [Double](repeating: 0, count: m)
            for j in 0..<m {
                var d = 0.0
                for i in 0..<HS { d += Double(q[t * qStride + h * HS + i]) * Double(k[j * kvStride + g * HS + i]) }
                s[j] = d * scale
            }
            let mx = s.max()!
            var sum = 0.0
            for j in 0..<m { s[j] = Foundation.exp(s[j] - mx); sum += s[j] }
            for i in 0..<HS {
                var acc = 0.0
                for j in 0..<m { acc += s[j] / sum * Double(v[j * kvStride + g * HS + i]) }
                out[t * outStride + h * HS + i] = Float(acc)
            }
        }
    }
}

/// y += α·x over n floats.
@inlinable
public func axpy(_ y: UnsafeMutablePointer<Float>, _ alpha: Float, _ x: UnsafePointer<Float>, _ n: Int) {
    var i = 0
    let a = SIMD16<Float>(repeating: alpha)
    while i + 16 <= n {
        var yv = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD16<Float>.self)
        yv.addProduct(a, UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self))
        UnsafeMutableRawPointer(y + i).storeBytes(of: yv, as: SIMD16<Float>.self)
        i += 16
    }
    while i < n { y[i] += alpha * x[i]; i += 1 }
}

// MARK: - Training: loop forward for parallel workers, and the backward

/// `attentionForward` restricted to the kv groups `groups` (the query heads g·NH/NKV ..<
/// (g+1)·NH/NKV of each), written with SIMD loops instead of BLAS so that workers can run
/// disjoint (sequence, group) pairs concurrently. Meant for the short sequences of training
/// (cost T·Tk·HS per head either way). Same arguments and `att` layout as `attentionForward`.
/// - Parameters:
///   - out: [T, outStride] output; head h is written at columns h·HS..<(h+1)·HS
///   - att: [NH, T, Tk] attention probabilities (saved for backward; zero above the diagonal)
///   - q: [T, qStride] queries; head h at columns h·HS
///   - k: [Tk, kvStride] keys; kv head g at columns g·HS
///   - v: [Tk, kvStride] values, same layout as k
///   - groups: the kv heads to compute (nil: all NKV)
public func attentionForwardGroups(
    out: UnsafeMutablePointer<Float>, outStride: Int, att: UnsafeMutablePointer<Float>,
    q: UnsafePointer<Float>, qStride: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>, kvStride: Int,
    T: Int, Tk: Int, NH: Int, NKV: Int, HS: Int, groups: Range<Int>? = nil
) {
    let past = Tk - T
    let group = NH / NKV
    let scale = 1 / Float(HS).squareRoot()
    for g in groups ?? 0..<NKV {
        for h in g * group..<(g + 1) * group {
            for t in 0..<T {
                let qt = q + t * qStride + h * HS, o = out + t * outStride + h * HS
                let p = att + (h * T + t) * Tk
                let m = past + t + 1
                for j in 0..<m { p[j] = scale * dot(qt, k + j * kvStride + g * HS, HS) }
                softmaxRow(p, m)
                for j in m..<Tk { p[j] = 0 }
                for i in 0..<HS { o[i] = 0 }
                for j in 0..<m { axpy(o, p[j], v + j * kvStride + g * HS, HS) }
            }
        }
    }
}

/// Backward of `attentionForwardGroups` (or `attentionForward`: same `att` layout) for the kv
/// groups `groups`, with SIMD loops and no BLAS, callable from concurrent workers.
/// With s = scale·q·kᵀ, p = causal softmax(s), out = p·v, per query row t:
///   dp_j = ⟨dout_t, v_j⟩, ds_j = p_j (dp_j − Σ_i p_i dp_i),
///   dq_t += scale Σ_j ds_j k_j, dk_j += scale ds_j q_t, dv_j += p_j dout_t.
/// A kv group's dk/dv collect all its query heads, so concurrent callers must own
/// disjoint (sequence, group) pairs. Every gradient is accumulated (+=).
/// - Parameters:
///   - dq: [T, qStride] gradient w.r.t. q, same layout as q
///   - dk: [Tk, kvStride] gradient w.r.t. k, same layout as k
///   - dv: [Tk, kvStride] gradient w.r.t. v, same layout as v
///   - dout: [T, outStride] upstream gradient, same layout as out
///   - att: [NH, T, Tk] probabilities saved by the forward
///   - q: [T, qStride], k: [Tk, kvStride], v: [Tk, kvStride] the forward inputs
///   - groups: the kv heads to compute (nil: all NKV)
public func attentionBackwardGroups(
    dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
    dout: UnsafePointer<Float>, outStride: Int, att: UnsafePointer<Float>,
    q: UnsafePointer<Float>, qStride: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>, kvStride: Int,
    T: Int, Tk: Int, NH: Int, NKV: Int, HS: Int, groups: Range<Int>? = nil
) {
    let past = Tk - T
    let group = NH / NKV
    let scale = 1 / Float(HS).squareRoot()
    withUnsafeTemporaryAllocation(of: Float.self, capacity: max(1, Tk)) { tmp in
        let ds = tmp.baseAddress!
        for g in groups ?? 0..<NKV {
            let kg = k + g * HS, vg = v + g * HS, dkg = dk + g * HS, dvg = dv + g * HS
            for h in g * group..<(g + 1) * group {
                for t in 0..<T {
                    let p = att + (h * T + t) * Tk
                    let dOut = dout + t * outStride + h * HS
                    let m = past + t + 1
                    var pdp: Float = 0
                    for j in 0..<m {
                        let dp = dot(dOut, vg + j * kvStride, HS)
                        ds[j] = dp
                        pdp += p[j] * dp
                    }
                    let qt = q + t * qStride + h * HS, dqt = dq + t * qStride + h * HS
                    for j in 0..<m {
                        let d = scale * p[j] * (ds[j] - pdp)
                        axpy(dqt, d, kg + j * kvStride, HS)
                        axpy(dkg + j * kvStride, d, qt, HS)
                        axpy(dvg + j * kvStride, p[j], dOut, HS)
                    }
                }
            }
        }
    }
}

/// Reference for `attentionBackwardGroups`, in Double, recomputing the probabilities from q and k
/// (it does not read the forward's `att`). Gradients are accumulated (+=).
public func attentionBackwardNaive(
    dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
    dout: UnsafePointer<Float>, outStride: Int,
    q: UnsafePointer<Float>, qStride: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>, kvStride: Int,
    T: Int, Tk: Int, NH: Int, NKV: Int, HS: Int
) {
    let past = Tk - T
    let scale = 1 / Double(HS).squareRoot()
    for h in 0..<NH {
        let g = h / (NH / NKV)
        for t in 0..<T {
            let m = past + t + 1
            var p = [Double](repeating: 0, count: m)
            for j in 0..<m {
                var d = 0.0
                for i in 0..<HS { d += Double(q[t * qStride + h * HS + i]) * Double(k[j * kvStride + g * HS + i]) }
                p[j] = d * scale
            }
            let mx = p.max()!
            var sum = 0.0
            for j in 0..<m { p[j] = Foundation.exp(p[j] - mx); sum += p[j] }
            for j in 0..<m { p[j] /= sum }
            var dp = [Double](repeating: 0, count: m), pdp = 0.0
            for j in 0..<m {
                var d = 0.0
                for i in 0..<HS { d += Double(dout[t * outStride + h * HS + i]) * Double(v[j * kvStride + g * HS + i]) }
                dp[j] = d
                pdp += p[j] * d
            }
            for i in 0..<HS {
                var acc = 0.0
                for j in 0..<m { acc += scale * p[j] * (dp[j] - pdp) * Double(k[j * kvStride + g * HS + i]) }
                dq[t * qStride + h * HS + i] += Float(acc)
            }
            for j in 0..<m {
                let d = scale * p[j] * (dp[j] - pdp)
                for i in 0..<HS {
                    dk[j * kvStride + g * HS + i] += Float(d * Double(q[t * qStride + h * HS + i]))
                    dv[j * kvStride + g * HS + i] += Float(p[j] * Double(dout[t * outStride + h * HS + i]))
                }
            }
        }
    }
}
