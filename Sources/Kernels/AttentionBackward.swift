// Backward of `attentionForward` (llm.c attention_backward with GQA and a past), using the
// probabilities the forward saved. Per head h with kv head g:
//   dP = dO·Vᵀ,  dV += Pᵀ·dO,  dS = P ⊙ (dP − rowsum(P ⊙ dP)),  dQ += s·dS·K,  dK += s·dSᵀ·Q
// with s = 1/√HS. dK and dV accumulate over the NH/NKV query heads that share a kv head.
import COpenBLAS

/// - Parameters:
///   - dq: [T, qStride] gradient w.r.t. the queries (head h at columns h·HS), accumulated
///   - dk: [Tk, dkvStride] gradient w.r.t. the keys, accumulated
///   - dv: [Tk, dkvStride] gradient w.r.t. the values, accumulated
///   - dout: [T, outStride] upstream gradient of the attention output
///   - att: [NH, T, Tk] the probabilities saved by the forward
///   - q: [T, qStride], k, v: [Tk, kvStride] the forward inputs
public func attentionBackward(
    dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>, dkvStride: Int,
    dout: UnsafePointer<Float>, outStride: Int, att: UnsafePointer<Float>,
    q: UnsafePointer<Float>, qStride: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>, kvStride: Int,
    T: Int, Tk: Int, NH: Int, NKV: Int, HS: Int
) {
    let group = NH / NKV
    let scale = 1 / Float(HS).squareRoot()
    let dS = FloatBuffer(count: T * Tk)
    for h in 0..<NH {
        let g = h / group
        let p = att + h * T * Tk
        // dP[T, Tk] = dO_h[T, HS] · V_g[Tk, HS]ᵀ
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(Tk), Int32(HS),
                    1, dout + h * HS, Int32(outStride), v + g * HS, Int32(kvStride), 0, dS.p, Int32(Tk))
        // dV_g[Tk, HS] += P[T, Tk]ᵀ · dO_h[T, HS]
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(Tk), Int32(HS), Int32(T),
                    1, p, Int32(Tk), dout + h * HS, Int32(outStride), 1, dv + g * HS, Int32(dkvStride))
        // dS = P ⊙ (dP − ⟨P, dP⟩) row by row (masked entries have P = 0)
        for t in 0..<T {
            let pr = p + t * Tk, dr = dS.p + t * Tk
            let d = dot(pr, dr, Tk)
            for j in 0..<Tk { dr[j] = pr[j] * (dr[j] - d) }
        }
        // dQ_h[T, HS] += s · dS[T, Tk] · K_g[Tk, HS]
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(T), Int32(HS), Int32(Tk),
                    scale, dS.p, Int32(Tk), k + g * HS, Int32(kvStride), 1, dq + h * HS, Int32(qStride))
        // dK_g[Tk, HS] += s · dS[T, Tk]ᵀ · Q_h[T, HS]
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(Tk), Int32(HS), Int32(T),
                    scale, dS.p, Int32(Tk), q + h * HS, Int32(qStride), 1, dk + g * HS, Int32(dkvStride))
    }
}
