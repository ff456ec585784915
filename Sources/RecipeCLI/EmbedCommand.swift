// `recipe embed`: the knowledge encoder's sentence embedding (or RECIPE's pooled features).
import Foundation
import Models

enum EmbedCommand: Subcommand {
    static let name = "embed"
    static let summary = "embed a sentence with the knowledge encoder (all-MiniLM-L6-v2)"
    static let help = """
    usage: recipe embed TEXT... [--features] [--json]

    Prints the sentence-transformers embedding of TEXT (or standard input when TEXT is -):
    the mean of the last hidden states over all tokens, L2-normalized (384 values).

      --features       print RECIPE's encoder features instead: [pooler, mean, max, min]
                       (1536 values, not normalized)
      --json           print {"embedding": [...]} (or {"features": [...]}) on one line
    \(modelsOptionHelp)
    \(threadsOptionHelp)
    """
    static let valued: Set<String> = ["models", "threads"]

    static func run(_ args: inout Arguments) throws -> ExitCode {
        let json = args.flag("json"), features = args.flag("features")
        let paths = args.modelPaths()
        try applyThreads(&args)
        try args.rejectUnknown()
        let text = try args.text("TEXT")
        let encoder = try BertEncoder(directory: ModelPaths.require(paths.encoder))
        let key = features ? "features" : "embedding"
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
}
