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
    ///     model once the prompt has stated the fact (`handsOff`): the rest is generated
    ///     from the question and the answer so far as text, without the prompt
    ///   - shouldStop: polled after every token
    public func answer(_ question: [Int], injection: Injection, maxTokens: Int, stop: [String] = [], handOff: Bool = false,
                       cache: LlamaKVCache? = nil, shouldStop: () -> Bool = { false }) throws -> GeneratedAnswer {
        let (sequence, _) = input(question, injection: injection)
        var ids: [Int] = []
        var text = ""
        var decoder = BPEStreamingDecoder(tokenizer: lm.tokenizer, skipSpecial: true)
        var reason: StopReason?
        var handing = false
        if injection.hasPrompt { handing = handOff }
        let longest = stop.map(\.count).max() ?? 0
        var failure: Error?
        /// Per token: cancellation, the hand-off, stop strings; false ends this phase. The
        /// text grows by each token's newly complete piece (a streaming decoder: no full
        /// decode per token); the final text is decoded once at the end.
        func accept(_ id: Int) -> Bool {
            if shouldStop() { reason = .cancelled; ids.append(id); return false }
            guard handing || longest > 0 else { ids.append(id); return true }
            var next = decoder
            let piece: String
            do { piece = try next.append(id) } catch { failure = error; return false }
            if handing, let trigger = handsOff(id, previous: ids, piece: piece) {
                if trigger == .keep { ids.append(id) }
                handing = false
                return false
            }
            decoder = next
            let before = text.count
            text += piece
            ids.append(id)
            // A stop string can only end in the new piece: search from `longest` back.
            if longest > 0 {
                let from = text.index(text.startIndex, offsetBy: max(0, before - longest))
                if let hit = stop.compactMap({ text.range(of: $0, range: from..<text.endIndex) }).min(by: { $0.lowerBound < $1.lowerBound }) {
                    text = String(text[..<hit.lowerBound])
                    reason = .stop
                    return false
                }
            }
            return true
        }
        let run = (cache?.count ?? 0) > 0 ? LlamaSequence(tokens: question) : sequence
        var ended = try lm.llama.generate(run, maxTokens: maxTokens, stopTokens: lm.stopTokens, cache: cache, onToken: accept).count
        var rows = sequence.tokens.count + sequence.prefix.count / lm.llama.config.embeddingLength
        if let failure { throw failure }
        if reason == nil && !handing && handOff && ids.count < maxTokens && ended > 0, injection.hasPrompt {
            // Handed off: the unedited model goes on from the question and the answer so far.
            let rest = LlamaSequence(tokens: question + ids)
            rows = rest.tokens.count
            ended = try lm.llama.generate(rest, maxTokens: maxTokens - ids.count, stopTokens: lm.stopTokens, onToken: accept).count
            if let failure { throw failure }
        }
        if reason == nil {
            let full = rows + ended >= lm.llama.config.contextLength
            reason = ids.count == maxTokens || full ? .length : .eos
        }
        if reason != .stop { text = try lm.tokenizer.decode(ids, skipSpecial: true) }
        return GeneratedAnswer(text: text, tokens: ids, stopReason: reason!)
    }

    enum HandOff { case keep, drop }

    /// Whether the prompt has stated the fact once token `id` (decoding to `piece`) follows
    /// `previous`: a word token generated before (the prompt starts to repeat: dropped), or
    /// the end of a sentence or line (kept). nil: go on with the prompt.
    func handsOff(_ id: Int, previous: [Int], piece: String) -> HandOff? {
        if piece.contains(where: { $0.isLetter || $0.isNumber }) && previous.contains(id) { return .drop }
        if piece.contains(where: { $0 == "." || $0 == "\n" || $0 == "!" || $0 == "?" }) { return .keep }
        return nil
    }
}
