import Kernels

/// Largest |a − b| over two equally long arrays.
func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

/// Random rows of a quantized matrix with sane scales: every fp16 scale/min is a value in
/// ±0.05, every quant byte random.
func randomQuantRows(_ format: QuantFormat, rows: Int, cols: Int, seed: UInt64) -> [UInt8] {
    let n = rows * format.rowBytes(cols)
    let r = fill(n, seed: seed)
    var bytes = r.map { UInt8(truncatingIfNeeded: Int(($0 + 1) * 127.99)) }
    let halfs = fill(n, seed: seed &+ 99)
    func putHalf(_ at: Int, _ v: Float) {
        let bits = Float16(v).bitPattern
        bytes[at] = UInt8(bits & 0xFF); bytes[at + 1] = UInt8(bits >> 8)
    }
    switch format {
    case .f32:
        for i in 0..<(n / 4) {
            let bits = halfs[i].bitPattern
            for k in 0..<4 { bytes[4 * i + k] = UInt8((bits >> (8 * UInt32(k))) & 0xFF) }
        }
    case .f16:
        for i in 0..<(n / 2) { putHalf(2 * i, halfs[i]) }
    case .bf16:
        for i in 0..<(n / 2) {
            let bits = halfs[i].bitPattern >> 16
            bytes[2 * i] = UInt8(bits & 0xFF); bytes[2 * i + 1] = UInt8(bits >> 8)
        }
    case .q4_0, .q8_0:
        for b in 0..<(n / format.blockBytes) { putHalf(b * format.blockBytes, halfs[b] * 0.05) }
    case .q4_1:
        for b in 0..<(n / 20) { putHalf(b * 20, halfs[2 * b] * 0.05); putHalf(b * 20 + 2, halfs[2 * b + 1] * 0.05) }
    case .q4Packed, .q8Packed:
        break  // derived layouts: make them with QuantMatrix.packedForDecode()
    }
    return bytes
}

/// Central finite difference of a scalar loss L(x) with respect to x[i].
func finiteDifference(_ x: [Float], _ i: Int, h: Float = 1e-2, _ loss: ([Float]) -> Double) -> Double {
    var xp = x, xm = x
    xp[i] += h; xm[i] -= h
    return (loss(xp) - loss(xm)) / (2 * Double(h))
}
