// `recipe tokenize`: the LLM's byte-level BPE, or the encoder's WordPiece with --encoder.
import Foundation
import Models
import Tokenizers

enum TokenizeCommand: Subcommand {
    static let name = "tokenize"
    static let summary = "show the token ids of a text (LLM BPE or encoder WordPiece)"
    static let help = """
    usage: recipe tokenize TEXT... [--encoder] [--no-special] [--json] [--models DIR] [--gguf FILE]

    Tokenizes TEXT (or standard input when TEXT is -) with the LLM's tokenizer, read from
    the GGUF file. No BOS token is added (SmolLM2 adds none); control tokens such as
    <|im_start|> written in the text are recognised unless --no-special is given.

      --encoder        use the knowledge encoder's WordPiece (adds [CLS] ... [SEP])
      --no-special     treat control-token text literally (LLM tokenizer only)
      --gguf FILE      another Llama-family GGUF file to take the tokenizer from
      --json           print {"ids": [...], "tokens": [...]} on one line
    \(modelsOptionHelp)
    """
    static let valued: Set<String> = ["models", "gguf"]

    static func run(_ args: inout Arguments) throws -> ExitCode {
        let json = args.flag("json"), encoder = args.flag("encoder"), noSpecial = args.flag("no-special")
        let paths = args.modelPaths()
        let gguf = args.string("gguf")
        try args.rejectUnknown()
        let text = try args.text("TEXT")

        let ids: [Int]
        let tokens: [String]
        if encoder {
            let wp = try WordPieceTokenizer(vocabulary: ModelPaths.require(paths.encoder.appendingPathComponent("vocab.txt")))
            ids = wp.encode(text)
            tokens = ids.map { wp.vocabulary[$0] }
        } else {
            let path = try gguf ?? ModelPaths.require(paths.llm).path
            let bpe = try BPETokenizer.load(ggufPath: path)
            ids = bpe.encode(text, parseSpecial: !noSpecial)
            tokens = try ids.map { String(decoding: try bpe.pieceBytes($0), as: UTF8.self) }
        }
        if json {
            Console.json(["ids": ids, "tokens": tokens])
        } else {
            for (id, token) in zip(ids, tokens) {
                print("\(id)\t\(token.debugDescription)")
            }
            print("\(ids.count) tokens")
        }
        return .ok
    }
}
