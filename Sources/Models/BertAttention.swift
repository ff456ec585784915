// Bidirectional multi-head self-attention core for BERT over a batch of unpadded
// sequences stacked row-wise: each sequence attends only to itself, so there is no
// padding and no mask. Scores, softmax and the weighted sum are plain loops over one
// (sequence, head) pair at a time, in parallel over pairs: RECIPE's statements are
// 10–20 tokens, where a BLAS call per head costs more than the arithmetic.
import Foundation
import Kernels
import Parallelism

/// out[n, h·HS ..< (h+1)·HS] = Σ_j softmax_j(q_n · k_j / √HS) v_j over the rows j of n's
/// sequence, for every head h.
/// - Parameters:
///   - out: [N, C] attention output (C = NH · HS), every element written
///   - qkv: [N, 3C] query | key | value projections; head h of q is columns h·HS ..< (h+1)·HS
///   - offsets: [B + 1] start row of each sequence, then N
public func bertAttentionForward(
    _ out: UnsafeMutablePointer<Float>, _ qkv: UnsafePointer<Float>, offsets: [Int], NH: Int, HS: Int
) {
    let C = NH * HS, C3 = 3 * C
    let scale = 1 / Float(HS).squareRoot()
    let B = offsets.count - 1
    let maxT = (0..<B).map { offsets[$0 + 1] - offsets[$0] }.max() ?? 0
    let o = UnsafeSendable(out), src = UnsafeSendable(qkv)
    parallelRanges(B * NH, minimum: 4) { pairs in
        var scores = [Float](repeating: 0, count: maxT)
        scores.withUnsafeMutableBufferPointer { sp in
            let s = sp.baseAddress!
            for pair in pairs {
                let b = pair / NH, h = pair % NH
                let start = offsets[b], T = offsets[b + 1] - start
                let q0 = src.value + start * C3 + h * HS
                let k0 = q0 + C, v0 = q0 + 2 * C
                for i in 0..<T {
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
                        for d in 0..<HS { y[d] += p * v[d] }
                    }
                }
            }
        }
    }
}

/// Reference for `bertAttentionForward`, in Double.
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
