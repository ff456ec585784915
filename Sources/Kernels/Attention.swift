// Causal grouped-query attention over a KV cache (llm.c attention_forward, with GQA and a
// past). Query head h reads kv head h / (NH / NKV). The T queries sit at absolute positions
// past..<past+T with past = Tk − T, so query t sees keys 0...past+t.
//
// Prefill: per head, scores = Q_h·K_gᵀ and out = P·V_g through cblas_sgemm on strided
// views (no copies). Decode (T == 1): a SIMD dot-product loop per head.
import COpenBLAS
import Foundation

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

/// ⟨a, b⟩ over n floats (SIMD16 with FMA).
@inlinable
public func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD16<Float>(), i = 0
    while i + 16 <= n {
        acc.addProduct(UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self),
                       UnsafeRawPointer(b + i).loadUnaligned(as: SIMD16<Float>.self))
        i += 16
    }
    var s = acc.sum()
    while i < n { s += a[i] * b[i]; i += 1 }
    return s
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
