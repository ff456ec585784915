// One deterministic generator for every test target (SplitMix64), so randomized tests
// replay exactly and no target carries its own copy.

public struct SeededRandom: RandomNumberGenerator, Sendable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    public mutating func float() -> Float { Float(Double(next() >> 11) / Double(1 << 53)) * 2 - 1 }
    /// `n` random bytes.
    public mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: next()) } }
    /// Uniform in 0..<n.
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    /// `n` floats uniform in [-scale, scale) from `seed`.
    public static func floats(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var rng = SeededRandom(seed: seed)
        return (0..<n).map { _ in rng.float() * scale }
    }
}
