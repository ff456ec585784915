// Row-wise softmax and its backward.
import Foundation

/// Softmax of one row of `m` values in place (vectorized max, exp and sum).
/// - Parameters:
///   - row: [m] scores in, probabilities out
@inlinable
public func softmaxRow(_ row: UnsafeMutablePointer<Float>, _ m: Int) {
    guard m > 0 else { return }
    var i = 0
    var vmax = SIMD16<Float>(repeating: -.infinity)
    while i + 16 <= m {
        vmax = pointwiseMax(vmax, UnsafeRawPointer(row + i).loadUnaligned(as: SIMD16<Float>.self)); i += 16
    }
    var mx = vmax.max()
    while i < m { mx = max(mx, row[i]); i += 1 }
    i = 0
    var vsum = SIMD16<Float>()
    while i + 16 <= m {
        let e = vexp(UnsafeRawPointer(row + i).loadUnaligned(as: SIMD16<Float>.self) - mx)
        UnsafeMutableRawPointer(row + i).storeBytes(of: e, as: SIMD16<Float>.self)
        vsum += e; i += 16
    }
    var sum = vsum.sum()
    while i < m { let e = expf(row[i] - mx); row[i] = e; sum += e; i += 1 }
    let inv = 1 / sum
    i = 0
    while i + 16 <= m {
        let v = UnsafeRawPointer(row + i).loadUnaligned(as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(row + i).storeBytes(of: v * inv, as: SIMD16<Float>.self); i += 16
    }
    while i < m { row[i] *= inv; i += 1 }
}

/// In-place softmax over each of `rows` rows of length `n`; entries at index ≥ `valid(row)`
/// are set to 0 (used for causal masks: row t sees `t + 1 + offset` keys).
/// - Parameters:
///   - x: [rows, n] scores in, probabilities out
@inlinable
public func softmaxForward(_ x: UnsafeMutablePointer<Float>, rows: Int, n: Int, valid: (Int) -> Int = { _ in Int.max }) {
    for r in 0..<rows {
        let row = x + r * n
        let m = min(n, valid(r))
        softmaxRow(row, m)
        for i in m..<n { row[i] = 0 }
    }
}

/// Reference for `softmaxForward` in Double.
public func softmaxForwardNaive(_ x: UnsafeMutablePointer<Float>, rows: Int, n: Int, valid: (Int) -> Int = { _ in Int.max }) {
    for r in 0..<rows {
        let row = x + r * n
        let m = min(n, valid(r))
        var mx = -Double.infinity
        for i in 0..<m { mx = max(mx, Double(row[i])) }
        var e = [Double](repeating: 0, count: m), sum = 0.0
        for i in 0..<m { e[i] = Foundation.exp(Double(row[i]) - mx); sum += e[i] }
        for i in 0..<m { row[i] = Float(e[i] / sum) }
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
