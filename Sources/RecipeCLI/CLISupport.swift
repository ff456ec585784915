// Small pieces every subcommand uses: JSON output, messages on stderr, model locations.
import Foundation
import Models
import Recipe

enum Console {
    /// Writes to stdout. A reader that went away (EPIPE) costs the output, not the process:
    /// the throwing `write(contentsOf:)` is used, never the trapping `write(_:)`.
    static func out(_ text: String) {
        try? FileHandle.standardOutput.write(contentsOf: Data(text.utf8))
    }

    /// Writes to stderr, likewise never trapping.
    static func err(_ text: String) {
        try? FileHandle.standardError.write(contentsOf: Data(text.utf8))
    }

    /// Prints one compact JSON object on stdout (the `--json` contract: exactly one line).
    static func json(_ object: [String: Any]) {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        out(String(decoding: data, as: UTF8.self) + "\n")
    }

    /// A line on stderr (progress, warnings): stdout stays clean for results.
    static func note(_ message: String) {
        err(message + "\n")
    }

    /// Whether stderr is a terminal (progress bars only then).
    static var stderrIsTerminal: Bool { isatty(2) == 1 }
}

extension Arguments {
    /// `--models DIR`, else `RECIPE_MODELS`, else the fetch script's default.
    mutating func modelPaths() -> ModelPaths {
        ModelPaths(directory: string("models"))
    }

    /// The text argument: the positional words joined by spaces, or stdin when it is "-".
    func text(_ what: String) throws -> String {
        if positional == ["-"] {
            let data = FileHandle.standardInput.readDataToEndOfFile()
            guard let s = String(data: data, encoding: .utf8) else { throw UsageError("standard input is not valid UTF-8") }
            return s
        }
        guard !positional.isEmpty else { throw UsageError("missing \(what) (give it as an argument, or - to read stdin)") }
        return positional.joined(separator: " ")
    }
}

/// Help lines of the options shared by the commands that load models.
let modelsOptionHelp = """
      --models DIR     models directory (default: $RECIPE_MODELS, else ~/.cache/recipe/models,
                       filled by Pipelines/fetch-models.sh)
"""
let threadsOptionHelp = """
      --threads N      threads for every parallel loop: kernels, OpenBLAS, key search,
                       dequantization (default: all cores, or $RECIPE_THREADS)
"""

/// Writes one JSON object per line to a file: appending (the training log, which a resumed
/// run continues) or starting it afresh (`recipe eval --details`).
final class JSONLinesFile {
    let handle: FileHandle
    init(path: String, fresh: Bool = false) throws {
        if fresh || !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else { throw UsageError("cannot write \(path)") }
        }
        guard let h = FileHandle(forWritingAtPath: path) else { throw UsageError("cannot write \(path)") }
        h.seekToEndOfFile()
        handle = h
    }
    func append<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try handle.write(contentsOf: try encoder.encode(value) + Data("\n".utf8))
    }
}

/// `--refine-steps`, `--refine-lr`, `--refine-stop`, `--refine-statements`: prompt
/// refinement (`PromptRefiner`), shared by the commands that add facts (eval, ingest).
enum RefinementArguments {
    static let valued: Set<String> = ["refine-steps", "refine-lr", "refine-stop"]
    static let help = """
          --refine-steps N refine the continuous prompt of each new fact that names its
                           question and target with at most N Adam steps on that question
                           through the LLM (0: the prompt transformer's prompt alone, as the
                           paper; README "Training"; default \(PromptRefiner.Options.standard.steps))
          --refine-lr X    their learning rate (default \(PromptRefiner.Options.standard.learningRate))
          --refine-stop L  stop once the target's cross-entropy is below L nats per token
                           (default \(PromptRefiner.Options.standard.stopLoss))
          --refine-statements  also refine facts given as a bare statement, on the statement
                           itself (its first word, then the rest; off by default: ~1.2 s each)
    """

    static func parse(_ args: inout Arguments) throws -> PromptRefiner.Options {
        let d = PromptRefiner.Options.standard
        let o = PromptRefiner.Options(steps: try args.int("refine-steps", default: d.steps),
                                      learningRate: try args.float("refine-lr") ?? d.learningRate,
                                      stopLoss: try args.float("refine-stop") ?? d.stopLoss,
                                      statements: args.flag("refine-statements"))
        if let p = o.problem { throw UsageError("--refine-*: \(p)") }
        return o
    }
}
