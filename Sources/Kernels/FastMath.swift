// Vectorized exp for the hot loops (softmax, SiLU). A Cephes-style range reduction
// x = n·ln2 + r with a degree-6 polynomial for e^r; relative error ≈ 2e-7 over the fp32
// range, which is below the noise of the fp32 forward (tests compare it with Foundation.exp).
import Foundation

/// e^x lane by lane. Inputs below −87.3 give 0, above 88.7 give +inf.
@inlinable @inline(__always)
public func vexp(_ x: SIMD16<Float>) -> SIMD16<Float> {
    let hi = SIMD16<Float>(repeating: 88.72283)
    let lo = SIMD16<Float>(repeating: -87.33654)
    let xc = x.clamped(lowerBound: lo, upperBound: hi)
    // n = round(x / ln2) by the 1.5·2²³ trick: adding it rounds to an integer (ties to even),
    // which then sits in the low mantissa bits (Swift's SIMD rounding and Float→Int32
    // conversions are out-of-line scalar loops; this stays in vector registers)
    let magic = SIMD16<Float>(repeating: 12_582_912)
    let t = xc * 1.442695040888963 + magic
    let n = t - magic
    // r = x − n·ln2 in two steps (Cody–Waite)
    var r = xc
    r.addProduct(n, SIMD16(repeating: -0.693359375))
    r.addProduct(n, SIMD16(repeating: 2.12194440e-4))
    // e^r ≈ 1 + r + r²·P(r)
    var p = SIMD16<Float>(repeating: 1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    let r2 = r * r
    var y = r + 1
    y.addProduct(p, r2)
    // scale by 2^n through the exponent bits
    let ni = unsafeBitCast(t, to: SIMD16<Int32>.self) &- 0x4B40_0000
    let bits = (ni &+ 127) &<< 23
    var out = y * unsafeBitCast(bits, to: SIMD16<Float>.self)
    out.replace(with: 0, where: x .< lo)
    out.replace(with: .infinity, where: x .> hi)
    return out
}

/// e^x for each of `n` values in place.
@inlinable
public func vexpInPlace(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
    var i = 0
    while i + 16 <= n {
        let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(x + i).storeBytes(of: vexp(v), as: SIMD16<Float>.self)
        i += 16
    }
    while i < n { x[i] = expf(x[i]); i += 1 }
}
