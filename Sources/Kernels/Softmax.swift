// Row-wise softmax and its backward.
import Foundation

/// In-place softmax over each of `rows` rows of length `n`; entries at index ≥ `valid(row)`
/// are set to 0 (used for causal masks: row t sees `t + 1 + offset` keys).
/// - Parameters:
///   - x: [rows, n] scores in, probabilities out
@inlinable
public func softmaxForward(_ x: UnsafeMutablePointer<Float>, rows: Int, n: Int, valid: (Int) -> Int = { _ in Int.max }) {
    for r in 0..<rows {
        let row = x + r * n
        let m = min(n, valid(r))
        var mx = -Float.infinity
        for i in 0..<m { mx = max(mx, row[i]) }
        var sum: Float = 0
        for i in 0..<m { let e = expf(row[i] - mx); row[i] = e; sum += e }
        let inv = 1 / sum
        for i in 0..<m { row[i] *= inv }
        for i in m..<n { row[i] = 0 }
    }
}

/// Backward of `softmaxForward`: dx = p ⊙ (dp − ⟨dp, p⟩), row by row (overwrites `dx`).
/// - Parameters:
///   - dx: [rows, n] gradient w.r.t. the scores (output)
///   - dp: [rows, n] gradient w.r.t. the probabilities
///   - p: [rows, n] the forward output
@inlinable
public func softmaxBackward(dx: UnsafeMutablePointer<Float>, dp: UnsafePointer<Float>, p: UnsafePointer<Float>, rows: Int, n: Int) {
    for r in 0..<rows {
        let o = r * n
        var dot: Float = 0
        for i in 0..<n { dot += dp[o + i] * p[o + i] }
        for i in 0..<n { dx[o + i] = p[o + i] * (dp[o + i] - dot) }
    }
}
