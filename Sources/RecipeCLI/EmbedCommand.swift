// `recipe embed`: the knowledge encoder's sentence embedding (or RECIPE's pooled features).
import Foundation
import Models

enum EmbedCommand: Subcommand {
    static let name = "embed"
    static let summary = "embed a sentence with the knowledge encoder (all-MiniLM-L6-v2)"
    static let help = """
    usage: recipe embed TEXT... [--features] [--json]
           recipe embed --lines [--features] < FILE

    Prints the sentence-transformers embedding of TEXT (or standard input when TEXT is -):
    the mean of the last hidden states over all tokens, L2-normalized (384 values).

      --features       print RECIPE's encoder features instead: [pooler, mean, max, min]
                       (1536 values, not normalized)
      --json           print {"embedding": [...]} (or {"features": [...]}) on one line
      --lines          embed every line of standard input as its own text (empty lines
                       included) and print one JSON line per text, in order: many texts
                       for one model load
    \(modelsOptionHelp)
    \(threadsOptionHelp)
    """
    static let valued: Set<String> = ["models", "threads"]

    static func run(_ args: inout Arguments) throws -> ExitCode {
        let json = args.flag("json"), features = args.flag("features"), lines = args.flag("lines")
        let paths = args.modelPaths()
        try applyThreads(&args)
        try args.rejectUnknown()
        let key = features ? "features" : "embedding"
        if lines {
            guard args.positional.isEmpty else { throw UsageError("--lines reads standard input: give no TEXT") }
            let texts = try readLines()
            let encoder = try BertEncoder(directory: ModelPaths.require(paths.encoder))
            for start in stride(from: 0, to: texts.count, by: batch) {
                let chunk = Array(texts[start..<min(start + batch, texts.count)])
                for values in features ? encoder.features(chunk) : encoder.embed(chunk) {
                    Console.json([key: values.map(Double.init)])
                }
            }
            return .ok
        }
        let text = try args.text("TEXT")
        let encoder = try BertEncoder(directory: ModelPaths.require(paths.encoder))
        let values = features ? encoder.features([text])[0] : encoder.embed([text])[0]
        if json {
            Console.json([key: values.map(Double.init)])
        } else {
            let norm = values.reduce(0) { $0 + $1 * $1 }.squareRoot()
            let head = values.prefix(8).map { String(format: "%+.4f", $0) }.joined(separator: " ")
            print("\(key): \(values.count) values, L2 norm \(String(format: "%.4f", norm))")
            print("[\(head) ...]")
        }
        return .ok
    }

    /// Texts per encoder call with `--lines`: enough to fill the matrix kernels, few enough
    /// that the output streams.
    static let batch = 32

    private static func readLines() throws -> [String] {
        let data = FileHandle.standardInput.readDataToEndOfFile()
        guard let s = String(data: data, encoding: .utf8) else { throw UsageError("standard input is not valid UTF-8") }
        var lines = s.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasSuffix("\r") ? String($0.dropLast()) : String($0) }
        if lines.last == "" { lines.removeLast() }
        return lines
    }
}
