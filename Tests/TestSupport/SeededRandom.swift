// One deterministic generator for every test target (the project's SplitMix64), so
// randomized tests replay exactly and no target carries its own copy.
import Posix

public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var generator: SplitMix64
    public init(seed: UInt64) { generator = SplitMix64(seed: seed) }

    public mutating func next() -> UInt64 { generator.next() }

    /// Uniform in [-1, 1).
    public mutating func float() -> Float { Float(generator.unitDouble()) * 2 - 1 }
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
