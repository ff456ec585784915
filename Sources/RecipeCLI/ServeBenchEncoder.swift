// The encoder `recipe bench serve` prepares a large repository with, so that 10^5 facts
// load in seconds instead of the ~15 minutes the MiniLM encoder needs for them.
//
// Why this is honest for ask latency: the worker's retrieval is an exact scan of the key
// matrix [rows, R] (cost set by rows and R, not by the values), and the prompt of the
// retrieved row is P*C floats whatever they hold. What the values do decide is *which*
// row wins, so:
//   - the probe facts (the questions the bench asks) are encoded by the real editor;
//   - each filler row is a perturbed copy of one of `sampleCount` filler statements that
//     were really encoded: key = real key + Gaussian noise (sigma = `noise` x the key's rms
//     per coordinate), prompt = the real prompt. Filler keys thus lie where real keys of
//     such statements lie, rather than being random directions that never compete;
//   - the bench checks every ask's retrieved fact against the probe it asked about.
// The fingerprint is the real encoder's, so the worker opens the repository as its own
// (it would otherwise re-encode every fact at open). Such a repository is for the bench
// only: `recipe ingest --verify` would rightly report the filler rows as different.
import Foundation
import Recipe
import Storage

final class ServeBenchEncoder: FactEncoder, @unchecked Sendable {
    /// Filler statements start with this; everything else is encoded for real.
    static let fillerPrefix = "Synthetic entity "

    static func filler(_ i: Int) -> String {
        "\(fillerPrefix)\(i) has the property number \(i &* 2654435761 % 100_003)"
    }

    let real: RecipeFactEncoder
    let sampleCount: Int
    let noise: Float
    private let sampleKeys: [Float]     // [sampleCount, R]
    private let samplePrompts: [Float]  // [sampleCount, P*C]
    private let sampleRMS: [Float]      // [sampleCount]

    init(real: RecipeFactEncoder, sampleCount: Int = 256, noise: Float = 0.05) throws {
        self.real = real
        self.sampleCount = sampleCount
        self.noise = noise
        let sample = try real.encode((0..<sampleCount).map { Self.filler(1_000_000_000 + $0) })
        sampleKeys = sample.keys
        samplePrompts = sample.prompts
        let R = real.keyDimension
        sampleRMS = (0..<sampleCount).map { j in
            let row = sample.keys[j * R..<(j + 1) * R]
            return (row.reduce(0) { $0 + $1 * $1 } / Float(R)).squareRoot()
        }
    }

    var keyDimension: Int { real.keyDimension }
    var promptRows: Int { real.promptRows }
    var promptWidth: Int { real.promptWidth }
    var fingerprint: String { real.fingerprint }
    func sentinel() -> (key: [Float], prompt: [Float]) { real.sentinel() }

    func encode(_ statements: [String]) throws -> (keys: [Float], prompts: [Float]) {
        try encode(facts: statements.map { Fact(id: $0, statement: $0) })
    }

    /// Real facts through the real encoder (refined as the worker would), fillers derived.
    func encode(facts: [Fact]) throws -> (keys: [Float], prompts: [Float]) {
        let statements = facts.map(\.statement)
        let R = keyDimension, PC = promptRowFloats
        var keys = [Float](repeating: 0, count: statements.count * R)
        var prompts = [Float](repeating: 0, count: statements.count * PC)
        let realRows = statements.indices.filter { !statements[$0].hasPrefix(Self.fillerPrefix) }
        if !realRows.isEmpty {
            let encoded = try real.encode(facts: realRows.map { facts[$0] })
            for (k, i) in realRows.enumerated() {
                keys.replaceSubrange(i * R..<(i + 1) * R, with: encoded.keys[k * R..<(k + 1) * R])
                prompts.replaceSubrange(i * PC..<(i + 1) * PC, with: encoded.prompts[k * PC..<(k + 1) * PC])
            }
        }
        for (i, s) in statements.enumerated() where s.hasPrefix(Self.fillerPrefix) {
            var rng = SplitMix(seed: Self.hash(s))
            let j = Int(rng.next() % UInt64(sampleCount))
            let sigma = noise * sampleRMS[j]
            for c in 0..<R { keys[i * R + c] = sampleKeys[j * R + c] + sigma * rng.gaussian() }
            prompts.replaceSubrange(i * PC..<(i + 1) * PC, with: samplePrompts[j * PC..<(j + 1) * PC])
        }
        return (keys, prompts)
    }

    /// FNV-1a of the statement: the same statement always gets the same row.
    static func hash(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return h
    }

    struct SplitMix {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        /// Standard normal (Box-Muller).
        mutating func gaussian() -> Float {
            let u1 = (Double(next() >> 11) + 1) / Double(1 << 53), u2 = Double(next() >> 11) / Double(1 << 53)
            return Float((-2 * log(u1)).squareRoot() * cos(2 * .pi * u2))
        }
    }
}
