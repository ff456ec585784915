// Rotary position embedding in GGML's NORM mode: inside every head the adjacent pairs
// (x[2i], x[2i+1]) are rotated by pos · θ_i with θ_i = base^(−2i/D), where D is the number
// of rotated dimensions (the head size unless `llama.rope.dimension_count` says fewer).
// This is what llama.cpp's converter expects: it permutes the Q/K rows of HF checkpoints
// so that HF's rotate-half pairs become adjacent (see goldens/reference/smollm2_ref.py).

/// cos/sin of pos·θ_i for a run of positions, computed once per forward and shared by all
/// layers. Angles are formed in Double so long positions keep full fp32 precision.
public struct RoPETable {
    /// [T, D/2]
    public var cos: [Float]
    /// [T, D/2]
    public var sin: [Float]
    public let T: Int
    public let half: Int

    /// - Parameters:
    ///   - positions: [T] absolute position of each row
    ///   - dims: D, the rotated dimensions per head (even)
    ///   - base: θ base (rope freq base)
    public init(positions: [Int], dims: Int, base: Float) {
        T = positions.count
        half = dims / 2
        cos = [Float](repeating: 0, count: T * half)
        sin = cos
        let inv = (0..<half).map { i in Foundation.pow(Double(base), -2.0 * Double(i) / Double(dims)) }
        for (t, p) in positions.enumerated() {
            for i in 0..<half {
                let a = Double(p) * inv[i]
                cos[t * half + i] = Float(Foundation.cos(a))
                sin[t * half + i] = Float(Foundation.sin(a))
            }
        }
    }
}

/// In-place rotation of heads laid out in rows.
/// - Parameters:
///   - x: [T, stride] rows; heads start at column 0 and are HS apart (NH of them)
///   - table: angles for the T rows (D = 2·table.half ≤ HS dims rotated per head)
@inlinable
public func ropeForward(_ x: UnsafeMutablePointer<Float>, table: RoPETable, T: Int, NH: Int, HS: Int, stride: Int) {
    let half = table.half
    table.cos.withUnsafeBufferPointer { cp in
        table.sin.withUnsafeBufferPointer { sp in
            for t in 0..<T {
                let c = cp.baseAddress! + t * half, s = sp.baseAddress! + t * half
                for h in 0..<NH {
                    let v = x + t * stride + h * HS
                    for i in 0..<half {
                        let x0 = v[2 * i], x1 = v[2 * i + 1]
                        v[2 * i] = x0 * c[i] - x1 * s[i]
                        v[2 * i + 1] = x0 * s[i] + x1 * c[i]
                    }
                }
            }
        }
    }
}

/// Backward of `ropeForward`: the rotation is orthogonal, so the gradient is rotated back
/// by −pos·θ_i (in place on `dx`, same layout).
@inlinable
public func ropeBackward(_ dx: UnsafeMutablePointer<Float>, table: RoPETable, T: Int, NH: Int, HS: Int, stride: Int) {
    let half = table.half
    for t in 0..<T {
        for h in 0..<NH {
            let v = dx + t * stride + h * HS
            for i in 0..<half {
                let c = table.cos[t * half + i], s = table.sin[t * half + i]
                let g0 = v[2 * i], g1 = v[2 * i + 1]
                v[2 * i] = g0 * c + g1 * s
                v[2 * i + 1] = -g0 * s + g1 * c
            }
        }
    }
}

/// Reference for `ropeForward`, computing every angle in Double directly.
public func ropeForwardNaive(
    _ x: UnsafeMutablePointer<Float>, positions: [Int], dims: Int, base: Float, NH: Int, HS: Int, stride: Int
) {
    for (t, p) in positions.enumerated() {
        for h in 0..<NH {
            for i in 0..<dims / 2 {
                let a = Double(p) * Foundation.pow(Double(base), -2.0 * Double(i) / Double(dims))
                let j = t * stride + h * HS + 2 * i
                let x0 = Double(x[j]), x1 = Double(x[j + 1])
                x[j] = Float(x0 * Foundation.cos(a) - x1 * Foundation.sin(a))
                x[j + 1] = Float(x0 * Foundation.sin(a) + x1 * Foundation.cos(a))
            }
        }
    }
}

import Foundation
