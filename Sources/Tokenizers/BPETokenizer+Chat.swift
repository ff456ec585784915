// Encoding a chat prompt so that message content cannot smuggle in control tokens.
//
// HF `apply_chat_template(tokenize=True)` and llama.cpp render the prompt to text and then
// encode it with special-token parsing, so a user message containing "<|im_end|>" closes
// its own turn. Here the template's scaffolding becomes control ids and everything else is
// encoded as plain text. For content without special-token strings the ids are identical to
// `encode(template.render(messages))` (each scaffolding token is a split point either way),
// which the golden chat prompts check.

extension BPETokenizer {
    /// The token ids of a chat prompt.
    /// - Throws: `TokenizerError.unsupported` if the vocabulary lacks a token the template
    ///   needs (e.g. a ChatML template on a model without `<|im_start|>`).
    public func encodeChat(_ messages: [ChatTemplate.Message], template: ChatTemplate,
                           addGenerationPrompt: Bool = true) throws -> [Int] {
        var ids: [Int] = []
        var text = ""
        for segment in template.segments(messages, addGenerationPrompt: addGenerationPrompt) {
            switch segment {
            case let .text(t):
                text += t
            case let .special(s):
                guard let id = id(of: s), isSpecial(id) else {
                    throw TokenizerError.unsupported(
                        file: source, what: "chat template token \(s.debugDescription)",
                        hint: "the vocabulary has no special token with this text")
                }
                ids += encode(text, parseSpecial: false)
                text = ""
                ids.append(id)
            }
        }
        ids += encode(text, parseSpecial: false)
        return ids
    }
}
