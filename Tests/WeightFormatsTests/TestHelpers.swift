// Shared helpers for the WeightFormats tests: a seeded generator and error matching.
import Testing
import WeightFormats

/// SplitMix64: deterministic pseudo-random numbers so that failures reproduce.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    mutating func float() -> Float { Float(Double(next() >> 11) / Double(1 << 53)) * 2 - 1 }
    mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: next()) } }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

func hexBytes(_ hex: String) -> [UInt8] {
    var out = [UInt8]()
    var it = hex.utf8.makeIterator()
    while let a = it.next(), let b = it.next() {
        func v(_ c: UInt8) -> UInt8 { c <= 57 ? c - 48 : (c | 0x20) - 87 }
        out.append(v(a) << 4 | v(b))
    }
    return out
}

/// Runs `body` and returns the WeightFormatError it throws (a test failure otherwise).
func expectWeightError(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> WeightFormatError? {
    do {
        try body()
        Issue.record("expected a WeightFormatError, nothing was thrown", sourceLocation: sourceLocation)
    } catch let e as WeightFormatError {
        return e
    } catch {
        Issue.record("expected a WeightFormatError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}
