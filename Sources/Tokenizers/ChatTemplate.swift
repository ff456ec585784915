// Chat prompt rendering for ChatML-family models (SmolLM2, Qwen-style
// "<|im_start|>role\ncontent<|im_end|>\n"), without a Jinja engine.
//
// A GGUF carries its chat template as Jinja text (`tokenizer.chat_template`). Rather than
// interpret Jinja, we recognize the ChatML family from the literal pieces the template must
// contain and take its one free parameter, the default system prompt some templates insert
// when the conversation has none, from the template text itself. Anything else is refused
// with `TokenizerError.unsupported`, so a model with another format is never prompted wrongly.
//
// SmolLM2-135M-Instruct's template (verbatim from the GGUF):
//   {% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}
//   {{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging
//   Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' +
//   message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}
//   {{ '<|im_start|>assistant\n' }}{% endif %}

public struct ChatTemplate: Sendable, Equatable {
    /// One turn of a conversation.
    public struct Message: Sendable, Equatable, Codable {
        public var role: String
        public var content: String

        public init(role: String, content: String) {
            self.role = role
            self.content = content
        }

        public static func system(_ content: String) -> Message { Message(role: "system", content: content) }
        public static func user(_ content: String) -> Message { Message(role: "user", content: content) }
        public static func assistant(_ content: String) -> Message { Message(role: "assistant", content: content) }
    }

    /// The system prompt inserted when the first message is not a system message, if the
    /// template inserts one.
    public let defaultSystemPrompt: String?

    /// SmolLM2-Instruct's template, for when a file carries none.
    public static let smolLM2 = ChatTemplate(
        defaultSystemPrompt: "You are a helpful AI assistant named SmolLM, trained by Hugging Face")

    /// A ChatML template with the given default system prompt (nil: none is inserted).
    public init(defaultSystemPrompt: String?) {
        self.defaultSystemPrompt = defaultSystemPrompt
    }

    /// Recognizes a Jinja chat template.
    /// - Parameter source: file name for the error message.
    /// - Throws: `TokenizerError.unsupported` if the template is not of the ChatML family
    ///   this renderer reproduces.
    public init(jinja template: String, source: String = "tokenizer.chat_template") throws {
        let required = ["<|im_start|>", "<|im_end|>", "for message in messages", "add_generation_prompt"]
        let missing = required.filter { !template.contains($0) }
        // Constructs whose output this renderer would not reproduce.
        let refused = ["tools", "tool_call", "raise_exception", "<think>", "reasoning_content", "trim", "strip("]
            .filter { template.contains($0) }
        guard missing.isEmpty, refused.isEmpty, template.contains("<|im_start|>assistant") else {
            let head = String(template.prefix(80)).debugDescription
            let why = !missing.isEmpty
                ? "it lacks \(missing.joined(separator: ", "))"
                : !refused.isEmpty ? "it uses \(refused.joined(separator: ", "))" : "it has no '<|im_start|>assistant' generation prompt"
            throw TokenizerError.unsupported(
                file: source, what: "chat template \(head)",
                hint: "only ChatML templates (<|im_start|>role\\ncontent<|im_end|>) are rendered; \(why)")
        }
        self.defaultSystemPrompt = Self.defaultSystemPrompt(in: template)
    }

    /// The text between "<|im_start|>system\n" and "<|im_end|>" inside a string literal of
    /// the template, if the template writes a system turn of its own. The template may
    /// spell the newline as a real newline or as the Jinja escape "\n".
    static func defaultSystemPrompt(in template: String) -> String? {
        for opener in ["<|im_start|>system\n", "<|im_start|>system\\n"] {
            guard let start = template.range(of: opener),
                  let end = template.range(of: "<|im_end|>", range: start.upperBound..<template.endIndex)
            else { continue }
            let body = String(template[start.upperBound..<end.lowerBound])
            // A system turn built from message content is not a default prompt.
            if body.contains("{{") || body.contains("'") || body.contains("\"") || body.contains("+") { continue }
            return unescape(body)
        }
        return nil
    }

    /// Jinja/Python string-literal escapes that can appear in a system prompt.
    private static func unescape(_ s: String) -> String {
        guard s.contains("\\") else { return s }
        var out = "", escaping = false
        for c in s {
            if escaping {
                switch c {
                case "n": out.append("\n")
                case "t": out.append("\t")
                default: out.append(c)
                }
                escaping = false
            } else if c == "\\" {
                escaping = true
            } else {
                out.append(c)
            }
        }
        return out
    }

    /// A piece of a rendered prompt: template scaffolding that is a special token, or text.
    public enum Segment: Sendable, Equatable {
        case special(String)
        case text(String)
    }

    /// The control tokens the rendering uses; the vocabulary must have them.
    public static let controlTokens = ["<|im_start|>", "<|im_end|>"]

    /// The prompt for `messages` as scaffolding tokens and text, so that message content
    /// can be encoded without parsing special tokens inside it (see
    /// `BPETokenizer.encodeChat`). Joined, the segments give `render(...)`.
    public func segments(_ messages: [Message], addGenerationPrompt: Bool = true) -> [Segment] {
        var out: [Segment] = []
        func turn(_ role: String, _ content: String) {
            out += [.special("<|im_start|>"), .text("\(role)\n\(content)"), .special("<|im_end|>"), .text("\n")]
        }
        if let system = defaultSystemPrompt, let first = messages.first, first.role != "system" {
            turn("system", system)
        }
        for m in messages { turn(m.role, m.content) }
        if addGenerationPrompt { out += [.special("<|im_start|>"), .text("assistant\n")] }
        return out
    }

    /// The prompt text for `messages`, exactly as the template renders it.
    /// - Parameter addGenerationPrompt: end with "<|im_start|>assistant\n" so that the model
    ///   answers next.
    public func render(_ messages: [Message], addGenerationPrompt: Bool = true) -> String {
        segments(messages, addGenerationPrompt: addGenerationPrompt).map { segment in
            switch segment {
            case let .special(s), let .text(s): return s
            }
        }.joined()
    }
}
