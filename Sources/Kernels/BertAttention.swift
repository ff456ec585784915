// Bidirectional multi-head self-attention for BERT over a batch of unpadded sequences
// stacked row-wise: each sequence attends only to itself, so there is no padding and no
// mask. Forward and backward side by side (llm.c's attention_forward / attention_backward
// without the causal mask), each with a Double twin for the tests. Scores, softmax and the
// weighted sum are plain loops over one (sequence, head) pair at a time, in parallel over
// pairs: RECIPE's statements are 10–20 tokens, where a BLAS call per head costs more than
// the arithmetic.
import Foundation
import Parallelism

/// What `bertAttentionBackward` needs from the forward: the attention probabilities.
public struct BertAttentionCache: Sendable {
    /// per sequence b and head h, in (b, h) order, the [T_b, T_b] probabilities (row i:
    /// query i over the keys of its sequence); empty when the forward kept none
    public var probabilities: [Float]
    /// [B + 1] the offsets the forward ran on
    public var offsets: [Int]
}

/// The start of each (sequence, head) block of probabilities: [B · NH + 1], then the total.
func bertAttentionBlockStarts(offsets: [Int], NH: Int) -> [Int] {
    var out = [0]
    out.reserveCapacity((offsets.count - 1) * NH + 1)
    for b in 0..<(offsets.count - 1) {
        let T = offsets[b + 1] - offsets[b]
        for _ in 0..<NH { out.append(out.last! + T * T) }
    }
    return out
}

/// out[n, h·HS ..< (h+1)·HS] = Σ_j softmax_j(q_n · k_j / √HS) v_j over the rows j of n's
/// sequence, for every head h.
/// - Parameters:
///   - out: [N, C] attention output (C = NH · HS), every element written
///   - qkv: [N, 3C] query | key | value projections; head h of q is columns h·HS ..< (h+1)·HS
///   - offsets: [B + 1] start row of each sequence, then N
///   - cache: keep the probabilities for `bertAttentionBackward` (training)
/// - Returns: the probabilities when `cache` is true, else an empty cache.
@discardableResult
public func bertAttentionForward(
    _ out: UnsafeMutablePointer<Float>, _ qkv: UnsafePointer<Float>, offsets: [Int], NH: Int, HS: Int, cache: Bool = false
) -> BertAttentionCache {
    let C = NH * HS, C3 = 3 * C
    let scale = 1 / Float(HS).squareRoot()
    let B = offsets.count - 1
    let maxT = (0..<B).map { offsets[$0 + 1] - offsets[$0] }.max() ?? 0
    let starts = cache ? bertAttentionBlockStarts(offsets: offsets, NH: NH) : []
    var probabilities = [Float](repeating: 0, count: starts.last ?? 0)
    let o = UnsafeSendable(out), src = UnsafeSendable(qkv)
    probabilities.withUnsafeMutableBufferPointer { pb in
        let kept = UnsafeSendable(pb.baseAddress)
        parallelRanges(B * NH, minimum: 4) { pairs in
            // a row's scores, then its probabilities: in the cache when it keeps them
            var scores = [Float](repeating: 0, count: maxT)
            scores.withUnsafeMutableBufferPointer { sp in
                for pair in pairs {
                    let b = pair / NH, h = pair % NH
                    let start = offsets[b], T = offsets[b + 1] - start
                    let q0 = src.value + start * C3 + h * HS
                    let k0 = q0 + C, v0 = q0 + 2 * C
                    for i in 0..<T {
                        let s = cache ? kept.value! + starts[pair] + i * T : sp.baseAddress!
                        let q = q0 + i * C3
                        var mx = -Float.infinity
                        for j in 0..<T {
                            let v = dot(q, k0 + j * C3, HS) * scale
                            s[j] = v
                            mx = max(mx, v)
                        }
                        var sum: Float = 0
                        for j in 0..<T { let e = expf(s[j] - mx); s[j] = e; sum += e }
                        let inv = 1 / sum
                        let y = o.value + (start + i) * C + h * HS
                        for d in 0..<HS { y[d] = 0 }
                        for j in 0..<T {
                            let p = s[j] * inv, v = v0 + j * C3
                            s[j] = p
                            for d in 0..<HS { y[d] += p * v[d] }
                        }
                    }
                }
            }
        }
    }
    return BertAttentionCache(probabilities: probabilities, offsets: cache ? offsets : [])
}

/// Reference for `bertAttentionForward`, in Double (keeps no probabilities).
public func bertAttentionForwardNaive(
    _ out: UnsafeMutablePointer<Float>, _ qkv: UnsafePointer<Float>, offsets: [Int], NH: Int, HS: Int
) {
    let C = NH * HS, C3 = 3 * C
    for b in 0..<(offsets.count - 1) {
        let start = offsets[b], T = offsets[b + 1] - start
        for h in 0..<NH {
            for i in 0..<T {
                var s = [Double](repeating: 0, count: T)
                for j in 0..<T {
                    var d = 0.0
                    for e in 0..<HS {
                        d += Double(qkv[(start + i) * C3 + h * HS + e]) * Double(qkv[(start + j) * C3 + C + h * HS + e])
                    }
                    s[j] = d / Double(HS).squareRoot()
                }
                let mx = s.max()!
                let ex = s.map { exp($0 - mx) }
                let sum = ex.reduce(0, +)
                for e in 0..<HS {
                    var acc = 0.0
                    for j in 0..<T { acc += ex[j] / sum * Double(qkv[(start + j) * C3 + 2 * C + h * HS + e]) }
                    out[(start + i) * C + h * HS + e] = Float(acc)
                }
            }
        }
    }
}

/// Backward of `bertAttentionForward`. Per (sequence, head) with P its probabilities:
///   dP_ij = dout_i·v_j, dv_j = Σ_i P_ij dout_i,
///   dS_ij = P_ij (dP_ij − Σ_k P_ik dP_ik), dq_i = Σ_j dS_ij k_j / √HS, dk_j = Σ_i dS_ij q_i / √HS,
/// in parallel over (sequence, head) pairs, whose q, k and v columns are their own.
/// - Parameters:
///   - dqkv: [N, 3C] gradient w.r.t. qkv, same layout, accumulated (+=)
///   - dout: [N, C] upstream gradient
///   - qkv: [N, 3C] the forward input
///   - cache: the forward's probabilities and offsets (`cache: true`)
public func bertAttentionBackward(
    dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, qkv: UnsafePointer<Float>,
    cache: BertAttentionCache, NH: Int, HS: Int
) {
    let offsets = cache.offsets
    let C = NH * HS, C3 = 3 * C, scale = 1 / Float(HS).squareRoot()
    let B = offsets.count - 1
    guard B > 0 else { return }
    let starts = bertAttentionBlockStarts(offsets: offsets, NH: NH)
    precondition(cache.probabilities.count == starts.last!, "bertAttentionBackward: the forward kept no probabilities (cache: true)")
    let maxT = (0..<B).map { offsets[$0 + 1] - offsets[$0] }.max() ?? 0
    cache.probabilities.withUnsafeBufferPointer { pb in
        let src = UnsafeSendable(qkv), dctx = UnsafeSendable(dout)
        let prob = UnsafeSendable(pb.baseAddress!), grad = UnsafeSendable(dqkv)
        parallelRanges(B * NH, minimum: 8) { pairs in
            var dP = [Float](repeating: 0, count: maxT)
            for pair in pairs {
                let b = pair / NH, h = pair % NH, start = offsets[b], T = offsets[b + 1] - start
                let q0 = src.value + start * C3 + h * HS, k0 = q0 + C, v0 = q0 + 2 * C
                let dq0 = grad.value + start * C3 + h * HS, dk0 = dq0 + C, dv0 = dq0 + 2 * C
                for i in 0..<T {
                    let p = prob.value + starts[pair] + i * T, dy = dctx.value + (start + i) * C + h * HS
                    var weighted: Float = 0
                    for j in 0..<T {
                        dP[j] = dot(dy, v0 + j * C3, HS)
                        weighted += p[j] * dP[j]
                        let dv = dv0 + j * C3
                        for e in 0..<HS { dv[e] += p[j] * dy[e] }
                    }
                    let q = q0 + i * C3, dq = dq0 + i * C3
                    for j in 0..<T {
                        let dS = p[j] * (dP[j] - weighted) * scale
                        let k = k0 + j * C3, dk = dk0 + j * C3
                        for e in 0..<HS {
                            dq[e] += dS * k[e]
                            dk[e] += dS * q[e]
                        }
                    }
                }
            }
        }
    }
}

/// Reference for `bertAttentionBackward`, in Double, recomputing the probabilities from q
/// and k (it does not read a cache). Gradients are accumulated (+=).
public func bertAttentionBackwardNaive(
    dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, qkv: UnsafePointer<Float>,
    offsets: [Int], NH: Int, HS: Int
) {
    let C = NH * HS, C3 = 3 * C
    let scale = 1 / Double(HS).squareRoot()
    for b in 0..<(offsets.count - 1) {
        let start = offsets[b], T = offsets[b + 1] - start
        func q(_ i: Int, _ e: Int) -> Double { Double(qkv[(start + i) * C3 + e]) }
        for h in 0..<NH {
            let qc = h * HS, kc = C + h * HS, vc = 2 * C + h * HS
            for i in 0..<T {
                var p = [Double](repeating: 0, count: T)
                for j in 0..<T {
                    var d = 0.0
                    for e in 0..<HS { d += q(i, qc + e) * q(j, kc + e) }
                    p[j] = d * scale
                }
                let mx = p.max()!
                var sum = 0.0
                for j in 0..<T { p[j] = exp(p[j] - mx); sum += p[j] }
                for j in 0..<T { p[j] /= sum }
                var dp = [Double](repeating: 0, count: T), pdp = 0.0
                for j in 0..<T {
                    var d = 0.0
                    for e in 0..<HS { d += Double(dout[(start + i) * C + h * HS + e]) * q(j, vc + e) }
                    dp[j] = d
                    pdp += p[j] * d
                }
                for e in 0..<HS {
                    var acc = 0.0
                    for j in 0..<T { acc += scale * p[j] * (dp[j] - pdp) * q(j, kc + e) }
                    dqkv[(start + i) * C3 + qc + e] += Float(acc)
                }
                for j in 0..<T {
                    let ds = scale * p[j] * (dp[j] - pdp)
                    for e in 0..<HS {
                        dqkv[(start + j) * C3 + kc + e] += Float(ds * q(i, qc + e))
                        dqkv[(start + j) * C3 + vc + e] += Float(p[j] * Double(dout[(start + i) * C + h * HS + e]))
                    }
                }
            }
        }
    }
}
