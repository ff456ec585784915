// The one SIMD dot product of the project (attention scores, key search, BERT heads,
// f32 matvec rows), and its scalar twin that the tests compare it with. Every caller
// uses the same one, so a score computed in one place (a sentinel, a rescored
// candidate) equals the score the scan computed for the same row.

/// ⟨a, b⟩ over n floats: SIMD16 with FMA (two AVX2 or one AVX-512 accumulator), then a
/// scalar tail.
///   a: [n]      b: [n]
@inlinable
public func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD16<Float>(), i = 0
    while i + 16 <= n {
        acc.addProduct(UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self),
                       UnsafeRawPointer(b + i).loadUnaligned(as: SIMD16<Float>.self))
        i += 16
    }
    var s = acc.sum()
    while i < n { s += a[i] * b[i]; i += 1 }
    return s
}

/// The reference for `dot`: one Double accumulator, in order.
///   a: [n]      b: [n]
public func dotNaive(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var s = 0.0
    for i in 0..<max(0, n) { s += Double(a[i]) * Double(b[i]) }
    return Float(s)
}
