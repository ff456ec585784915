// Llama's feed-forward gate: out = SiLU(gate) ⊙ up, with SiLU(g) = g · σ(g).
import Foundation

/// - Parameters:
///   - out: [N] activations (may alias `gate`)
///   - gate: [N] gate projection
///   - up: [N] up projection
@inlinable
public func swigluForward(_ out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, N: Int) {
    var i = 0
    while i + 16 <= N {
        let g = UnsafeRawPointer(gate + i).loadUnaligned(as: SIMD16<Float>.self)
        let u = UnsafeRawPointer(up + i).loadUnaligned(as: SIMD16<Float>.self)
        let s = g / (1 + vexp(-g))
        UnsafeMutableRawPointer(out + i).storeBytes(of: s * u, as: SIMD16<Float>.self)
        i += 16
    }
    while i < N {
        let g = gate[i]
        out[i] = g / (1 + expf(-g)) * up[i]
        i += 1
    }
}

/// `swigluForward` over rows, where gate and up sit side by side in each row of `gateUp`
/// (the fused gate|up projection), split across threads.
/// - Parameters:
///   - out: [T, FF]
///   - gateUp: [T, 2·FF] gate in columns 0..<FF, up in FF..<2FF
public func swigluForwardRows(_ out: UnsafeMutablePointer<Float>, gateUp: UnsafePointer<Float>, T: Int, FF: Int) {
    let o = UnsafeSendable(out), gu = UnsafeSendable(gateUp)
    parallelRanges(T, minimum: 4) { r in
        for t in r {
            swigluForward(o.value + t * FF, gate: gu.value + t * 2 * FF, up: gu.value + t * 2 * FF + FF, N: FF)
        }
    }
}

/// Reference for `swigluForward` in Double.
public func swigluForwardNaive(_ out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, N: Int) {
    for i in 0..<N {
        let g = Double(gate[i])
        out[i] = Float(g / (1 + Foundation.exp(-g)) * Double(up[i]))
    }
}

/// Backward of `swigluForward`. With s = σ(g): d/dg SiLU(g) = s · (1 + g · (1 − s)).
/// - Parameters:
///   - dgate: [N] gradient w.r.t. gate, accumulated (+=)
///   - dup: [N] gradient w.r.t. up, accumulated (+=)
///   - dout: [N] upstream gradient
///   - gate, up: [N] the forward inputs
@inlinable
public func swigluBackward(
    dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>,
    dout: UnsafePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, N: Int
) {
    for i in 0..<N {
        let g = gate[i], s = 1 / (1 + expf(-g))
        dgate[i] += dout[i] * up[i] * s * (1 + g * (1 - s))
        dup[i] += dout[i] * g * s
    }
}
