// The encoder behind `recipe ingest` (and its benchmarks): the real RECIPE editor over
// all-MiniLM-L6-v2, or, with `--fake-encoder`, the deterministic HashingFactEncoder that
// needs no model files (for tests, the crash test and dry runs; its keys and prompts are
// pseudo-random, so retrieval answers are meaningless).
import Foundation
import Models
import Recipe
import Storage

enum IngestEncoder {
    struct Loaded {
        let encoder: any FactEncoder
        /// Human-readable origin, for the open report.
        let description: String
        /// The real encoder, when loaded (benchmarks time its parts).
        let recipe: RecipeFactEncoder?
    }

    /// Options every command that opens a repository shares.
    static let valued = Set(["models", "checkpoint", "seed", "fake-fingerprint", "fake-dimension"]).union(RefinementArguments.valued)
    static let help = """
          --fake-encoder   use the deterministic hashing encoder (no model files; for tests,
                           the crash test and dry runs: retrieval with it is meaningless)
          --fake-fingerprint S   its fingerprint (default hashing-v1; another value acts as
                           "another model": the repository re-encodes every fact at open)
          --fake-dimension R     its key dimension (default 16)
          --checkpoint FILE  editor checkpoint (default: the shipped one; "untrained" for the initialization)
          --seed S         seed of the untrained editor (default 1)
    \(RefinementArguments.help)
    \(modelsOptionHelp)
    """

    static func load(_ args: inout Arguments) throws -> Loaded {
        let fake = args.flag("fake-encoder")
        let fakeFingerprint = args.string("fake-fingerprint")
        let fakeDimension = try args.int("fake-dimension", default: 16)
        let checkpoint = args.string("checkpoint")
        let seed = try args.int("seed", default: 1)
        let paths = args.modelPaths()
        let refinement = try RefinementArguments.parse(&args)
        if fake {
            guard fakeDimension >= 1, fakeDimension <= 4096 else { throw UsageError("--fake-dimension must be in 1...4096") }
            let e = HashingFactEncoder(keyDimension: fakeDimension, fingerprint: fakeFingerprint ?? "hashing-v1")
            return Loaded(encoder: e, description: "fake hashing encoder \(e.fingerprint) R=\(fakeDimension)", recipe: nil)
        }
        if fakeFingerprint != nil { throw UsageError("--fake-fingerprint needs --fake-encoder") }
        let (e, name) = try EditorCheckpoint.factEncoder(paths, checkpoint: checkpoint, seed: UInt64(seed), refinement: refinement)
        return Loaded(encoder: e, description: "RECIPE editor \(name) over \(paths.encoder.lastPathComponent)", recipe: e)
    }
}
