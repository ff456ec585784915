// Matrix products through OpenBLAS (row-major), each with a naive twin for the tests.
//
// Shapes use llm.c's letters: T rows (tokens), C input channels, OC output channels.
// Weights are stored the way GGUF and safetensors store them: W is [OC, C] row-major.
import COpenBLAS

/// y[T, OC] = x[T, C] · W[OC, C]ᵀ (+ bias[OC]) (+ y if `accumulate`). Up to
/// `matmulFewRowsLimit` rows take `matmulFewRows`, more take OpenBLAS.
/// - Parameters:
///   - y: [T, OC] output
///   - x: [T, C] input
///   - w: [OC, C] weight
///   - bias: [OC] or nil
@inlinable
public func matmulForward(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
    _ bias: UnsafePointer<Float>?, T: Int, C: Int, OC: Int, accumulate: Bool = false
) {
    if T <= matmulFewRowsLimit {
        if T > 0 { matmulFewRows(y, x, w, T: T, C: C, OC: OC, accumulate: accumulate) }
    } else {
        BLASThreads.sync()
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(OC), Int32(C),
                    1, x, Int32(C), w, Int32(C), accumulate ? 1 : 0, y, Int32(OC))
    }
    if let bias {
        for t in 0..<T {
            let row = y + t * OC
            for o in 0..<OC { row[o] += bias[o] }
        }
    }
}

/// Reference for `matmulForward`, accumulating in Double.
public func matmulForwardNaive(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
    _ bias: UnsafePointer<Float>?, T: Int, C: Int, OC: Int, accumulate: Bool = false
) {
    for t in 0..<T {
        for o in 0..<OC {
            var s = Double(bias?[o] ?? 0)
            for c in 0..<C { s += Double(x[t * C + c]) * Double(w[o * C + c]) }
            y[t * OC + o] = (accumulate ? y[t * OC + o] : 0) + Float(s)
        }
    }
}

/// Backward of `matmulForward`. Every gradient output is optional and accumulated (+=),
/// so a frozen weight simply passes nil for `dw`/`dbias`.
/// - Parameters:
///   - dx: [T, C] gradient w.r.t. the input, accumulated
///   - dw: [OC, C] gradient w.r.t. the weight, accumulated
///   - dbias: [OC] gradient w.r.t. the bias, accumulated
///   - dy: [T, OC] upstream gradient
///   - x: [T, C] the forward input
///   - w: [OC, C] the weight
@inlinable
public func matmulBackward(
    dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?, dbias: UnsafeMutablePointer<Float>?,
    dy: UnsafePointer<Float>, x: UnsafePointer<Float>, w: UnsafePointer<Float>, T: Int, C: Int, OC: Int
) {
    BLASThreads.sync()
    if let dx {  // dx[T, C] += dy[T, OC] · W[OC, C]
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(T), Int32(C), Int32(OC),
                    1, dy, Int32(OC), w, Int32(C), 1, dx, Int32(C))
    }
    if let dw {  // dW[OC, C] += dyᵀ[OC, T] · x[T, C]
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(OC), Int32(C), Int32(T),
                    1, dy, Int32(OC), x, Int32(C), 1, dw, Int32(C))
    }
    if let dbias {
        for t in 0..<T { for o in 0..<OC { dbias[o] += dy[t * OC + o] } }
    }
}

/// Reference for `matmulBackward`, accumulating in Double.
public func matmulBackwardNaive(
    dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?, dbias: UnsafeMutablePointer<Float>?,
    dy: UnsafePointer<Float>, x: UnsafePointer<Float>, w: UnsafePointer<Float>, T: Int, C: Int, OC: Int
) {
    if let dx {
        for t in 0..<T { for c in 0..<C {
            var s = 0.0
            for o in 0..<OC { s += Double(dy[t * OC + o]) * Double(w[o * C + c]) }
            dx[t * C + c] += Float(s)
        } }
    }
    if let dw {
        for o in 0..<OC { for c in 0..<C {
            var s = 0.0
            for t in 0..<T { s += Double(dy[t * OC + o]) * Double(x[t * C + c]) }
            dw[o * C + c] += Float(s)
        } }
    }
    if let dbias {
        for o in 0..<OC {
            var s = 0.0
            for t in 0..<T { s += Double(dy[t * OC + o]) }
            dbias[o] += Float(s)
        }
    }
}

/// The input gradient of `matmulForward` alone, for frozen weights: dx = dy · W, written
/// (or added to dx when `accumulate`), so the caller needs no zeroed buffer.
/// - Parameters:
///   - dx: [T, C] gradient w.r.t. the input
///   - dy: [T, OC] upstream gradient
///   - w: [OC, C] the weight
@inlinable
public func matmulBackwardInput(
    dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, w: UnsafePointer<Float>,
    T: Int, C: Int, OC: Int, accumulate: Bool = false
) {
    guard T > 0 else { return }
    BLASThreads.sync()
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(T), Int32(C), Int32(OC),
                1, dy, Int32(OC), w, Int32(C), accumulate ? 1 : 0, dx, Int32(C))
}
