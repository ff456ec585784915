// Llama's feed-forward gate: out = SiLU(gate) ⊙ up, with SiLU(g) = g · σ(g).
import Foundation
import Parallelism

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

/// Backward of `swigluForwardRows` (vectorized, split across threads). Unlike
/// `swigluBackward` it overwrites the gradient, so the caller needs no zeroed buffer.
/// - Parameters:
///   - dgateUp: [T, 2·FF] gradient w.r.t. gate (columns 0..<FF) and up (FF..<2FF), overwritten
///   - dout: [T, FF] upstream gradient
///   - gateUp: [T, 2·FF] the forward input
public func swigluBackwardRows(dgateUp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, gateUp: UnsafePointer<Float>, T: Int, FF: Int) {
    let dgu = UnsafeSendable(dgateUp), d = UnsafeSendable(dout), gu = UnsafeSendable(gateUp)
    parallelRanges(T, minimum: 4) { r in
        for t in r {
            let g = gu.value + t * 2 * FF, u = g + FF, dy = d.value + t * FF
            let dg = dgu.value + t * 2 * FF, du = dg + FF
            var i = 0
            while i + 16 <= FF {
                let gv = UnsafeRawPointer(g + i).loadUnaligned(as: SIMD16<Float>.self)
                let uv = UnsafeRawPointer(u + i).loadUnaligned(as: SIMD16<Float>.self)
                let dv = UnsafeRawPointer(dy + i).loadUnaligned(as: SIMD16<Float>.self)
                let s = 1 / (1 + vexp(-gv))
                UnsafeMutableRawPointer(dg + i).storeBytes(of: dv * uv * s * (1 + gv * (1 - s)), as: SIMD16<Float>.self)
                UnsafeMutableRawPointer(du + i).storeBytes(of: dv * gv * s, as: SIMD16<Float>.self)
                i += 16
            }
            while i < FF {
                let s = 1 / (1 + expf(-g[i]))
                dg[i] = dy[i] * u[i] * s * (1 + g[i] * (1 - s))
                du[i] = dy[i] * g[i] * s
                i += 1
            }
        }
    }
}

/// Reference for `swigluBackward` in Double (accumulates like it).
public func swigluBackwardNaive(
    dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>,
    dout: UnsafePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, N: Int
) {
    for i in 0..<N {
        let g = Double(gate[i]), s = 1 / (1 + Foundation.exp(-g))
        dgate[i] += Float(Double(dout[i]) * Double(up[i]) * s * (1 + g * (1 - s)))
        dup[i] += Float(Double(dout[i]) * g * s)
    }
}
