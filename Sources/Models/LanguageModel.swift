// A Llama-family GGUF file opened once: the transformer and its tokenizer together, which
// is what every command and the worker need.
import Foundation
import Tokenizers
import WeightFormats

public final class LanguageModel: Sendable {
    public let path: String
    public let llama: Llama
    public let tokenizer: BPETokenizer

    /// Parses the GGUF file once and builds the model and the tokenizer from it.
    public init(path: String) throws {
        let gguf: GGUFFile
        do { gguf = try GGUFFile(path: path) } catch {
            throw ModelError.unsupported(file: path, what: "the file", hint: "\(error)")
        }
        self.path = path
        llama = try Llama(gguf: gguf)
        tokenizer = try BPETokenizer(gguf: gguf)
    }

    /// Tokens that end a reply: the end-of-sequence token and the chat turn end (`<|im_end|>`),
    /// when the vocabulary has them.
    public var stopTokens: Set<Int> {
        var s = Set<Int>()
        if let eos = tokenizer.eos { s.insert(eos) }
        if let end = tokenizer.id(of: "<|im_end|>") { s.insert(end) }
        return s
    }
}
