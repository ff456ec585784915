// The two building blocks of RECIPE's small networks (qizhou000/RECIPE
// `editors/recipe/models.py`), forward and backward side by side:
//
//   linear:         y = W x + b
//   residual ReLU:  y = x + relu(W x + b)        (W square)
//
// knowledge/query head = linear(F → R) then residual ReLU(R); prompt transformer =
// residual ReLU(R) then linear(R → P·C). Parameters are frozen-or-trained by passing nil
// gradients; every gradient is accumulated (+=).
import Kernels

/// A weight matrix and bias inside a flat parameter buffer.
public struct LinearView {
    public let w: UnsafeMutablePointer<Float>   // [OC, C]
    public let b: UnsafeMutablePointer<Float>   // [OC]
    public let C: Int
    public let OC: Int
}

/// Saved by `residualReLUForward` for its backward.
public struct ResidualReLUCache {
    /// [N, R] the block's input
    public var x: [Float]
    /// [N, R] relu(W x + b)
    public var a: [Float]
}

public enum RecipeLayers {
    /// y[N, OC] = x[N, C] · Wᵀ + b
    public static func linearForward(_ x: [Float], _ l: LinearView, N: Int) -> [Float] {
        var y = [Float](repeating: 0, count: N * l.OC)
        matmulForward(&y, x, l.w, l.b, T: N, C: l.C, OC: l.OC)
        return y
    }

    /// Backward of `linearForward`; returns dx[N, C] when `wantInput`.
    /// - Parameters:
    ///   - dy: [N, OC]
    ///   - x: [N, C] the forward input
    ///   - grad: gradients of W and b (accumulated), nil when frozen
    public static func linearBackward(_ dy: [Float], x: [Float], _ l: LinearView, grad: LinearView?, N: Int, wantInput: Bool) -> [Float]? {
        var dx: [Float]? = wantInput ? [Float](repeating: 0, count: N * l.C) : nil
        if dx != nil {
            dx!.withUnsafeMutableBufferPointer { d in
                matmulBackward(dx: d.baseAddress, dw: grad?.w, dbias: grad?.b, dy: dy, x: x, w: l.w, T: N, C: l.C, OC: l.OC)
            }
        } else {
            matmulBackward(dx: nil, dw: grad?.w, dbias: grad?.b, dy: dy, x: x, w: l.w, T: N, C: l.C, OC: l.OC)
        }
        return dx
    }

    /// y[N, R] = x + relu(x · Wᵀ + b), W: [R, R]
    public static func residualReLUForward(_ x: [Float], _ l: LinearView, N: Int) -> (y: [Float], cache: ResidualReLUCache) {
        var a = linearForward(x, l, N: N)
        for i in a.indices where a[i] < 0 { a[i] = 0 }
        var y = x
        for i in y.indices { y[i] += a[i] }
        return (y, ResidualReLUCache(x: x, a: a))
    }

    /// Backward of `residualReLUForward`: returns dx[N, R] (always needed: it is the residual path).
    public static func residualReLUBackward(_ dy: [Float], cache: ResidualReLUCache, _ l: LinearView, grad: LinearView?, N: Int) -> [Float] {
        var da = dy
        for i in da.indices where cache.a[i] <= 0 { da[i] = 0 }
        var dx = linearBackward(da, x: cache.x, l, grad: grad, N: N, wantInput: true)!
        for i in dx.indices { dx[i] += dy[i] }
        return dx
    }
}
