// Scalar conversions between Float and the 16-bit float formats stored in weight files:
// IEEE binary16 (fp16, the scales of every ggml block) and bfloat16. The fast forms use
// Swift's Float16 (F16C instructions on x86); the naive twins do it bit by bit and are
// tested equal on all 65,536 inputs.

/// fp16 bits -> Float (exact).
@inline(__always)
public func halfToFloat(_ bits: UInt16) -> Float {
    Float(Float16(bitPattern: bits))
}

/// Float -> fp16 bits, round to nearest even (as ggml's `GGML_FP32_TO_FP16`).
@inline(__always)
public func floatToHalf(_ value: Float) -> UInt16 {
    Float16(value).bitPattern
}

/// bf16 bits -> Float (exact: bf16 is the high half of a float32).
@inline(__always)
public func bf16ToFloat(_ bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
}

/// Float -> bf16 bits, round to nearest even; NaN stays a (quiet) NaN. Same as ggml's
/// `ggml_compute_fp32_to_bf16`.
@inline(__always)
public func floatToBF16(_ value: Float) -> UInt16 {
    let u = value.bitPattern
    if (u & 0x7fff_ffff) > 0x7f80_0000 { return UInt16(truncatingIfNeeded: (u >> 16) | 64) }
    return UInt16(truncatingIfNeeded: (u &+ (0x7fff &+ ((u >> 16) & 1))) >> 16)
}

/// Naive twin of `halfToFloat`: decodes sign, exponent and mantissa explicitly.
public func halfToFloatNaive(_ bits: UInt16) -> Float {
    let sign: Float = bits & 0x8000 != 0 ? -1 : 1
    let exponent = Int((bits >> 10) & 0x1f)
    let mantissa = Float(bits & 0x3ff)
    switch exponent {
    case 0: return sign * mantissa * Float(sign: .plus, exponent: -24, significand: 1)
    case 31: return mantissa == 0 ? sign * .infinity : .nan
    default: return sign * (1 + mantissa / 1024) * Float(sign: .plus, exponent: exponent - 15, significand: 1)
    }
}
