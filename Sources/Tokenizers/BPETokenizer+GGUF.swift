// Loading a byte-level BPE tokenizer from GGUF metadata (llama.cpp's `tokenizer.ggml.*` keys).

import WeightFormats

extension BPETokenizer {
    /// Reads the tokenizer of a GGUF file.
    ///
    /// Keys: `tokenizer.ggml.model` (must be "gpt2"), `tokenizer.ggml.pre` ("smollm", "gpt-2"
    /// and the names llama.cpp splits the same way, see `PreTokenizer.named`),
    /// `tokenizer.ggml.tokens`, `tokenizer.ggml.merges`, `tokenizer.ggml.token_type`
    /// (optional: all normal), `tokenizer.ggml.bos_token_id` / `eos_token_id` /
    /// `padding_token_id` / `add_bos_token` / `add_eos_token` (optional), `tokenizer.chat_template` (optional).
    ///
    /// - Throws: `TokenizerError.unsupported` for another tokenizer model or pre-tokenizer,
    ///   `TokenizerError.metadata` for a missing key, `TokenizerError.vocabulary` for a bad
    ///   entry, `WeightFormatError` for a key of the wrong type.
    public convenience init(gguf: GGUFFile) throws {
        let file = gguf.path
        func required(_ key: String) throws {
            if gguf.metadata[key] == nil {
                throw TokenizerError.metadata(file: file, key: key, reason: "missing")
            }
        }
        try required("tokenizer.ggml.model")
        let model = try gguf.string("tokenizer.ggml.model")
        guard model == "gpt2" else {
            throw TokenizerError.unsupported(
                file: file, what: "tokenizer model '\(model)' (tokenizer.ggml.model)",
                hint: "BPETokenizer reads byte-level BPE vocabularies, tokenizer.ggml.model = \"gpt2\"")
        }
        // llama.cpp falls back to a "default" pre-tokenizer when the key is absent and warns
        // that quality degrades; we refuse rather than guess.
        try required("tokenizer.ggml.pre")
        let preName = try gguf.string("tokenizer.ggml.pre")
        guard let pre = PreTokenizer.named(preName) else {
            throw TokenizerError.unsupported(
                file: file, what: "pre-tokenizer '\(preName)' (tokenizer.ggml.pre)",
                hint: "supported: \(PreTokenizer.supportedNames.joined(separator: ", "))")
        }
        try required("tokenizer.ggml.tokens")
        try required("tokenizer.ggml.merges")
        try self.init(
            tokens: gguf.strings("tokenizer.ggml.tokens"),
            merges: gguf.strings("tokenizer.ggml.merges"),
            tokenTypes: gguf.optionalInts("tokenizer.ggml.token_type"),
            preTokenizer: pre,
            bos: gguf.optionalInt("tokenizer.ggml.bos_token_id"),
            eos: gguf.optionalInt("tokenizer.ggml.eos_token_id"),
            padding: gguf.optionalInt("tokenizer.ggml.padding_token_id"),
            addsBOS: gguf.optionalBool("tokenizer.ggml.add_bos_token") ?? false,
            addsEOS: gguf.optionalBool("tokenizer.ggml.add_eos_token") ?? false,
            chatTemplate: gguf.optionalString("tokenizer.chat_template"),
            source: file)
    }

    /// Opens a GGUF file and reads its tokenizer.
    public static func load(ggufPath path: String) throws -> BPETokenizer {
        try BPETokenizer(gguf: GGUFFile(path: path))
    }

    /// The chat template of the model, recognized from `tokenizer.chat_template`.
    /// - Throws: `TokenizerError.metadata` if the model has no template,
    ///   `TokenizerError.unsupported` if it is not a ChatML template.
    public func chatTemplate() throws -> ChatTemplate {
        guard let text = chatTemplateText else {
            throw TokenizerError.metadata(file: source, key: "tokenizer.chat_template",
                                          reason: "missing: the model has no chat template (a base model?)")
        }
        return try ChatTemplate(jinja: text, source: source)
    }
}
