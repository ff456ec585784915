// The one implementation of an answer: the model's input for a question with what a method
// puts in front of it, and the greedy continuation with the stop rules users ask for. The
// worker's `ask` serves it and `recipe eval` measures it, so what is measured is what is
// served.
//
//   input: [prefix rows (the editor's leading token, then the fact's prompt [P, C])] or
//          [in-context text tokens], then the question's tokens: the question as typed, or
//          with `chat` rendered as a user turn of the model's chat template followed by
//          the assistant's turn (the continuous prompt stays in front of the whole of it)
//   stop:  the end-of-text / end-of-turn tokens (`eos`), `maxTokens` or the context
//          (`length`), a stop string (`stop`: the text is cut before it), or the caller's
//          `shouldStop` (`cancelled`: a client gone, a shutdown)
//
// The per-token decisions are `AnswerState`'s; `answer` drives one state over its own KV
// cache, the worker's `AnswerBatch` drives many together (same logits, same answers).
import Models
import Tokenizers

/// Why an answer ended.
public enum StopReason: String, Sendable, Codable, Equatable {
    case eos, length, stop, cancelled
}

public struct GeneratedAnswer: Sendable, Equatable {
    /// The decoded answer, cut before the first stop string it contains.
    public let text: String
    /// Every token generated (those after a stop string's start included).
    public let tokens: [Int]
    public let stopReason: StopReason

    public init(text: String, tokens: [Int], stopReason: StopReason) {
        (self.text, self.tokens, self.stopReason) = (text, tokens, stopReason)
    }
}

public struct AnswerGenerator: Sendable {
    public let lm: LanguageModel
    /// Puts the editor's leading token in front of a fact's prompt (`RecipeModel.prefix`);
    /// identity for an editor without one.
    public let prefix: @Sendable ([Float]) -> [Float]

    public init(lm: LanguageModel, model: RecipeModel?) {
        self.lm = lm
        if let model, model.config.leadingToken != nil {
            prefix = { model.prefix($0) }
        } else {
            prefix = { $0 }
        }
    }

    /// The tokens of `question`: as typed, or (`chat`) as one user message in the model's
    /// chat template with the assistant's turn opened (message text never becomes a control
    /// token: `BPETokenizer.encodeChat`).
    public func tokens(of question: String, chat: Bool) throws -> [Int] {
        guard chat else { return lm.tokenizer.encode(question) }
        return try lm.tokenizer.encodeChat([.user(question)], template: try lm.tokenizer.chatTemplate())
    }

    /// `question` rendered as `tokens(of:chat:)` encodes it, as text (teacher-forced scoring
    /// appends the target to it): the same ids for text without control-token strings.
    public func text(of question: String, chat: Bool) throws -> String {
        try Self.text(of: question, chat: chat, tokenizer: lm.tokenizer)
    }

    /// `text(of:chat:)` for `tokenizer`'s model (training renders its queries with it).
    public static func text(of question: String, chat: Bool, tokenizer: BPETokenizer) throws -> String {
        guard chat else { return question }
        return try tokenizer.chatTemplate().render([.user(question)], addGenerationPrompt: true)
    }

    /// The model input for question `tokens` with `injection` in front (a `.prompt` is the
    /// fact's prompt [P, C] as stored), and how many input rows come before the first
    /// question token.
    public func input(_ tokens: [Int], injection: Injection) -> (sequence: LlamaSequence, shift: Int) {
        var injection = injection
        if case let .prompt(p) = injection { injection = .prompt(prefix(p)) }
        if case let .promptAndText(p, t) = injection { injection = .promptAndText(prefix(p), t) }
        return injection.sequence(tokens, tokenizer: lm.tokenizer, width: lm.llama.config.embeddingLength)
    }

    /// Greedy answer to `question` with `injection` in front.
    ///   - cache: the KV cache to generate in: one that holds the injection's prefix rows
    ///     already (the question's tokens alone are then prefilled), or an empty one (the
    ///     whole input is prefilled into it, so the caller can keep the prefix's rows after);
    ///     nil prefills everything into a new cache
    ///   - stop: strings that end the answer (the text is cut before the first one)
    ///   - handOff: with a continuous prompt in front, hand the answer over to the unedited
    ///     model once the prompt has stated the fact (`AnswerState.handsOff`): the rest is generated
    ///     from the question and the answer so far as text, without the prompt
    ///   - shouldStop: polled after every token
    public func answer(_ question: [Int], injection: Injection, maxTokens: Int, stop: [String] = [], handOff: Bool = false,
                       cache: LlamaKVCache? = nil, shouldStop: () -> Bool = { false }) throws -> GeneratedAnswer {
        var state = AnswerState(self, question: question, injection: injection, maxTokens: maxTokens, stop: stop, handOff: handOff,
                                prefilled: (cache?.count ?? 0) > 0)
        var cache = cache
        var step = state.step
        while true {
            switch step {
            case let .prefill(sequence, fresh):
                if fresh || cache == nil { cache = lm.llama.makeCache(capacity: state.cacheCapacity) }
                let logits = try lm.llama.forward(sequence, cache: cache!, logits: .last).last
                step = try state.next(logits: logits, cacheCount: cache!.count, shouldStop: shouldStop)
            case let .decode(token):
                let logits = try lm.llama.decode(token: token, cache: cache!)
                step = try state.next(logits: logits[...], cacheCount: cache!.count, shouldStop: shouldStop)
            case let .finished(answer):
                return answer
            }
        }
    }
}
