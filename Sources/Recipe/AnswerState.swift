// One answer in progress: every per-token decision of `AnswerGenerator.answer` (greedy
// choice, end-of-text tokens, the length limit, cancellation, the hand-off to the unedited
// model, stop strings) as a state machine that consumes the logits of one step and says
// what the sequence needs next. `AnswerGenerator.answer` drives one such state with its own
// KV cache; the worker's batch (`AnswerBatch`) drives many at once, prefilling and decoding
// them together. Both feed it the same logits (the model computes a sequence's rows alike
// alone or batched), so both give the same tokens, text and stop reason.
//
//   start ──prefill(input)──▶ token ──decode(token)──▶ token … ──▶ finished
//                              │ hand-off: prefill(question + answer so far) in a new cache
//                              ▼ (no prompt in front), then tokens again until finished
import Kernels
import Models
import Tokenizers

public struct AnswerState {
    /// What the sequence needs next.
    public enum Step {
        /// Run `sequence` through the model, appending it to the sequence's KV cache (`fresh`:
        /// a new, empty cache; otherwise the cache the answer started with, or a new one if it
        /// has none), and hand the last row's logits to `next`.
        case prefill(LlamaSequence, fresh: Bool)
        /// Append `token` to the KV cache (one decode step) and hand the logits to `next`.
        case decode(Int)
        case finished(GeneratedAnswer)
    }

    let tokenizer: BPETokenizer
    let question: [Int]
    let injection: Injection
    let maxTokens: Int
    let stop: [String]
    let handOff: Bool
    let stopTokens: Set<Int>
    let contextLength: Int
    let longest: Int
    /// The model input with the injection in front (prefix rows + question tokens).
    let sequence: LlamaSequence

    /// The step to take now (the first: the prefill).
    public private(set) var step: Step
    private var ids: [Int] = []
    private var text = ""
    private var decoder: BPEStreamingDecoder
    private var reason: StopReason?
    /// Still with the prompt in front and watching for the hand-off.
    private var handing: Bool
    /// 1 with the injection in front, 2 after the hand-off.
    private var phase = 1
    /// Tokens this phase may produce, and has produced (stopping tokens excluded).
    private var phaseLimit: Int
    private var phaseCount = 0
    /// Input rows of this phase's prefill (the length reason compares them with the context).
    private var rows: Int

    /// An answer to `question` (tokens) with `injection` in front, as `AnswerGenerator.answer`
    /// takes its arguments; `prefilled`: the KV cache it will run in holds the injection's
    /// prefix rows already, so only the question is prefilled.
    public init(_ generator: AnswerGenerator, question: [Int], injection: Injection, maxTokens: Int, stop: [String] = [],
                handOff: Bool = false, prefilled: Bool = false) {
        let lm = generator.lm
        tokenizer = lm.tokenizer
        self.question = question
        self.injection = injection
        self.maxTokens = maxTokens
        self.stop = stop
        self.handOff = handOff
        stopTokens = lm.stopTokens
        contextLength = lm.llama.config.contextLength
        longest = stop.map(\.count).max() ?? 0
        sequence = generator.input(question, injection: injection).sequence
        decoder = BPEStreamingDecoder(tokenizer: lm.tokenizer, skipSpecial: true)
        handing = injection.hasPrompt && handOff
        phaseLimit = maxTokens
        rows = sequence.tokens.count + sequence.prefix.count / lm.llama.config.embeddingLength
        step = .decode(0)  // replaced below
        if maxTokens <= 0 {
            step = .finished(GeneratedAnswer(text: "", tokens: [], stopReason: .length))
        } else {
            step = .prefill(prefilled ? LlamaSequence(tokens: question) : sequence, fresh: false)
        }
    }

    /// Positions a new KV cache for this phase needs at most (prefill and tokens).
    public var cacheCapacity: Int { rows + phaseLimit }

    /// Tokens generated so far.
    public var tokenCount: Int { ids.count }

    /// Takes the logits [V] of the step just run (`cacheCount`: positions now in the KV cache)
    /// and returns the next step. `shouldStop` is asked once per accepted token, as
    /// `AnswerGenerator.answer` asks it. Throws when the tokenizer cannot decode a token.
    public mutating func next(logits: ArraySlice<Float>, cacheCount: Int, shouldStop: () -> Bool) throws -> Step {
        let id = logits.withUnsafeBufferPointer { argmax($0.baseAddress!, $0.count) }
        if stopTokens.contains(id) {
            step = try endPhase()
            return step
        }
        phaseCount += 1
        let goOn = try accept(id, shouldStop: shouldStop)
        if !goOn || phaseCount == phaseLimit || cacheCount >= contextLength {
            step = try endPhase()
        } else {
            step = .decode(id)
        }
        return step
    }

    /// Per token: cancellation, the hand-off, stop strings; false ends this phase. The text
    /// grows by each token's newly complete piece (a streaming decoder: no full decode per
    /// token); the final text is decoded once at the end.
    private mutating func accept(_ id: Int, shouldStop: () -> Bool) throws -> Bool {
        if shouldStop() { reason = .cancelled; ids.append(id); return false }
        guard handing || longest > 0 else { ids.append(id); return true }
        var next = decoder
        let piece = try next.append(id)
        if handing, let trigger = Self.handsOff(id, previous: ids, piece: piece) {
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

    /// The end of a phase: the hand-off's new prefill, or the finished answer.
    private mutating func endPhase() throws -> Step {
        if phase == 1, reason == nil, !handing, handOff, ids.count < maxTokens, phaseCount > 0, injection.hasPrompt {
            // Handed off: the unedited model goes on from the question and the answer so far.
            phase = 2
            let rest = LlamaSequence(tokens: question + ids)
            rows = rest.tokens.count
            phaseLimit = maxTokens - ids.count
            phaseCount = 0
            return .prefill(rest, fresh: true)
        }
        if reason == nil {
            let full = rows + phaseCount >= contextLength
            reason = ids.count == maxTokens || full ? .length : .eos
        }
        if reason != .stop { text = try tokenizer.decode(ids, skipSpecial: true) }
        return .finished(GeneratedAnswer(text: text, tokens: ids, stopReason: reason!))
    }

    enum HandOff { case keep, drop }

    /// Whether the prompt has stated the fact once token `id` (decoding to `piece`) follows
    /// `previous`: a word token generated before (the prompt starts to repeat: dropped), or
    /// the end of a sentence or line (kept). nil: go on with the prompt.
    static func handsOff(_ id: Int, previous: [Int], piece: String) -> HandOff? {
        if piece.contains(where: { $0.isLetter || $0.isNumber }) && previous.contains(id) { return .drop }
        if piece.contains(where: { $0 == "." || $0 == "\n" || $0 == "!" || $0 == "?" }) { return .keep }
        return nil
    }
}
