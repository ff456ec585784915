// Refinement of a fact's continuous prompt at ingestion (this project's addition to
// RECIPE). The prompt transformer turns a statement into a prompt in one pass; for a fact
// that also names its question and target ("Toko Yasuda plays the" → "violin"), a few Adam
// steps on that question then lower the target's cross-entropy with the prompt in front,
// through the frozen LLM (the training backward, `LlamaTrainingPass`), starting from the
// transformer's prompt. Only the fact's prompt changes; the LLM, the editor and the
// retrieval key do not. It stops early once the target's mean cross-entropy is below
// `stopLoss`, so a prompt that already carries its fact costs one forward.
//
//   loss(p) = −(1/n) Σ_target tokens log softmax(LLM([leading] + p + question + target))
//
// What it costs and buys is measured in docs/engineering-log.md (2026-11-22): ~1 s per refined
// fact on 2 cores, against ~2 ms for the transformer's pass.
import Foundation
import Models

public final class PromptRefiner: @unchecked Sendable {  // the pass under `passLock`, the rest under `lock`
    public struct Options: Sendable, Equatable, Codable {
        /// Adam steps at most per fact (0: no refinement).
        public var steps: Int
        public var learningRate: Float
        /// Stop once the target's mean cross-entropy (nats per token) is below this.
        public var stopLoss: Float
        /// Also refine a fact given as a bare statement, on the statement itself: its first
        /// word as the question, the rest as the target (~10 steps each: a whole sentence
        /// rarely meets the stop loss).
        public var statements: Bool

        /// The settings measured in docs/engineering-log.md (2026-11-22, commit 30bd4ff).
        public static let standard = Options(steps: 10, learningRate: 0.01, stopLoss: 0.05)
        public static let off = Options(steps: 0, learningRate: 0.01, stopLoss: 0.05)

        public init(steps: Int, learningRate: Float, stopLoss: Float, statements: Bool = false) {
            self.steps = steps
            self.learningRate = learningRate
            self.stopLoss = stopLoss
            self.statements = statements
        }

        /// Why these options cannot be used (nil: they can).
        public var problem: String? {
            if !(0...1000).contains(steps) { return "steps must be between 0 and 1000, got \(steps)" }
            if !(learningRate > 0 && learningRate.isFinite) { return "the learning rate must be positive, got \(learningRate)" }
            if !(stopLoss >= 0 && stopLoss.isFinite) { return "the stop loss must be 0 or more, got \(stopLoss)" }
            return nil
        }

        /// Names the options in an encoder fingerprint: prompts made with other options differ.
        public var fingerprint: String { "steps \(steps) lr \(learningRate) stop \(stopLoss)" + (statements ? " statements" : "") }
    }

    /// What refinement has done so far.
    public struct Counts: Sendable, Equatable {
        /// Facts refined (with a question and a target).
        public var facts = 0
        /// Adam steps taken over all of them.
        public var steps = 0
        /// Facts whose prompt already met `stopLoss` (no step taken).
        public var unchanged = 0
        public init(facts: Int = 0, steps: Int = 0, unchanged: Int = 0) {
            self.facts = facts
            self.steps = steps
            self.unchanged = unchanged
        }
    }

    /// Longest question + target refined, in LLM tokens: a step is a forward and backward of
    /// the whole sequence (its attention tape grows with its square), so a longer fact keeps
    /// the transformer's prompt rather than stall ingestion (~15 tokens is typical).
    public static let maxTokens = 128

    public let lm: LanguageModel
    public let options: Options
    private let pass: LlamaTrainingPass
    private let passLock = NSLock()
    private let lock = NSLock()
    private var _counts = Counts()
    private var shouldStop: @Sendable () -> Bool = { false }
    private var onStep: @Sendable () -> Void = {}

    /// Throws `RecipeError.invalidArgument` for options with a `problem`.
    public init(lm: LanguageModel, options: Options) throws {
        if let p = options.problem { throw RecipeError.invalidArgument("prompt refinement: \(p)") }
        self.lm = lm
        self.options = options
        pass = LlamaTrainingPass(model: lm.llama)
    }

    public var counts: Counts { lock.withLock { _counts } }

    /// Hooks for a long-running process (the worker): `shouldStop` is polled before every
    /// step, and true abandons the refinement with `RecipeError.interrupted` (the fact's time
    /// step is then not committed, so shutdown need not wait for it); `onStep` is called
    /// after every step (progress, for a watchdog).
    public func observe(shouldStop: @escaping @Sendable () -> Bool, onStep: @escaping @Sendable () -> Void) {
        lock.withLock {
            self.shouldStop = shouldStop
            self.onStep = onStep
        }
    }

    /// The refined prompt [P, C] for `question` → `target`, the steps taken, and the
    /// target's mean cross-entropy at the last forward (before its step, if one followed).
    /// `leading` is the editor's leading-token row (or empty): in front, not trained. A
    /// question + target past `maxTokens` returns the prompt as it is (loss NaN, 0 steps).
    public func refine(_ prompt: [Float], leading: [Float], question: String, target: String) throws
        -> (prompt: [Float], steps: Int, loss: Float) {
        try refine([prompt], leading: leading, requests: [(question, target)])[0]
    }

    /// `refine` of several prompts at once: each Adam step is one forward and backward of
    /// the LLM over all the facts still above the stop loss (`maxBatch` at a time), which
    /// reads the weights once for all of them. Each fact's result is its own refinement's,
    /// up to the rounding of another batch shape.
    public func refine(_ prompts: [[Float]], leading: [Float], requests: [(question: String, target: String)])
        throws -> [(prompt: [Float], steps: Int, loss: Float)] {
        precondition(prompts.count == requests.count, "one request per prompt")
        var results = prompts.map { (prompt: $0, steps: 0, loss: Float.nan) }
        guard options.steps > 0 else { return results }
        var cases: [(index: Int, case: TeacherForcedCase)] = []
        for (i, r) in requests.enumerated() {
            let c = TeacherForcedCase(prompt: r.question, target: r.target, tokenize: { self.lm.tokenizer.encode($0) })
            if !c.scored.isEmpty && c.input.count < Self.maxTokens { cases.append((i, c)) }
        }
        let hooks = lock.withLock { (shouldStop, onStep) }
        for start in stride(from: 0, to: cases.count, by: Self.maxBatch) {
            let part = Array(cases[start..<min(cases.count, start + Self.maxBatch)])
            let done = try passLock.withLock {
                try descend(part.map { prompts[$0.index] }, leading: leading, cases: part.map(\.case), hooks: hooks)
            }
            for (k, item) in part.enumerated() { results[item.index] = done[k] }
            lock.withLock {
                for r in done {
                    _counts.facts += 1
                    _counts.steps += r.steps
                    if r.steps == 0 { _counts.unchanged += 1 }
                }
            }
        }
        return results
    }

    /// Facts refined in one batch: their tape (activations of every block for every row)
    /// grows with the batch, ~0.6 MB per token, so a time step of hundreds of facts is
    /// refined 16 at a time.
    public static let maxBatch = 16

    /// What a fact is refined on: its question and target when it names both; with
    /// `options.statements`, a bare statement's first word and the rest of it; else nil.
    public func request(statement: String, question: String?, target: String?) -> (question: String, target: String)? {
        if let question, let target, !question.isEmpty, !target.isEmpty { return (question, target) }
        guard options.statements else { return nil }
        let words = statement.split(maxSplits: 1, whereSeparator: \.isWhitespace)
        guard words.count == 2 else { return nil }
        let rest = words[1].trimmingCharacters(in: .whitespacesAndNewlines)
        return rest.isEmpty ? nil : (String(words[0]), rest)
    }

    /// Refines, in place, the rows of `prompts` ([N, P·C]) whose fact has a question and a
    /// target (`requests[i]`, nil: left as it is), all of them in batches.
    public func refine(_ prompts: inout [Float], rowFloats w: Int, leading: [Float],
                       requests: [(question: String, target: String)?]) throws {
        precondition(prompts.count == requests.count * w, "one request (or nil) per prompt row")
        let rows = requests.indices.filter { requests[$0].map { !$0.question.isEmpty && !$0.target.isEmpty } ?? false }
        let refined = try refine(rows.map { Array(prompts[($0 * w)..<(($0 + 1) * w)]) }, leading: leading,
                                 requests: rows.map { requests[$0]! })
        for (i, r) in zip(rows, refined) { prompts.replaceSubrange((i * w)..<((i + 1) * w), with: r.prompt) }
    }

    /// Adam on each fact's prompt rows, bias-corrected, β = (0.9, 0.999), ε = 1e-8; a fact
    /// leaves the batch once its loss is below the stop loss.
    private func descend(_ prompts: [[Float]], leading: [Float], cases: [TeacherForcedCase],
                         hooks: (shouldStop: @Sendable () -> Bool, onStep: @Sendable () -> Void)) throws
        -> [(prompt: [Float], steps: Int, loss: Float)] {
        let C = lm.llama.config.embeddingLength, V = lm.llama.config.vocabSize
        let L = leading.count / C
        let b1: Float = 0.9, b2: Float = 0.999
        var p = prompts, m = prompts.map { [Float](repeating: 0, count: $0.count) }, v = m
        var loss = [Float](repeating: .nan, count: cases.count)
        var steps = [Int](repeating: options.steps, count: cases.count)
        var active = Array(cases.indices)
        for step in 1...options.steps {
            if hooks.shouldStop() { throw RecipeError.interrupted("prompt refinement, the process is stopping") }
            let rows = active.map { k in cases[k].scored.map { $0 + L + p[k].count / C } }
            let outs = try pass.forward(batch: active.map { LlamaSequence(tokens: cases[$0].input, prefix: leading + p[$0]) }, lossRows: rows)
            // d loss / d logits = (softmax − onehot(label)) / n per target token; zero for a
            // fact that has just met the stop loss (it leaves the batch, unchanged).
            var dLogits: [[Float]] = []
            var stepping: [Bool] = []
            for (j, k) in active.enumerated() {
                let c = cases[k], scale = 1 / Float(rows[j].count)
                var d = [Float](repeating: 0, count: rows[j].count * V)
                var l: Float = 0
                for (t, pos) in c.scored.enumerated() {
                    let probs = TeacherForcedCase.softmax(outs[j].logits(at: t))
                    let label = c.labels[pos]
                    l -= logf(max(probs[label], 1e-30)) * scale
                    for x in 0..<V { d[t * V + x] = probs[x] * scale }
                    d[t * V + label] -= scale
                }
                loss[k] = l
                let stops = l < options.stopLoss
                if stops { steps[k] = step - 1; d = [Float](repeating: 0, count: d.count) }
                dLogits.append(d)
                stepping.append(!stops)
            }
            if stepping.contains(true) {
                let dPrefix = try pass.backward(dLogits: dLogits)
                let c1 = 1 - powf(b1, Float(step)), c2 = 1 - powf(b2, Float(step))
                for (j, k) in active.enumerated() where stepping[j] {
                    for i in 0..<p[k].count {  // as `AdamOptimizer`, on the prompt's floats
                        let g = dPrefix[j][L * C + i]
                        m[k][i] = b1 * m[k][i] + (1 - b1) * g
                        v[k][i] = b2 * v[k][i] + (1 - b2) * g * g
                        p[k][i] -= options.learningRate * (m[k][i] / c1) / ((v[k][i] / c2).squareRoot() + 1e-8)
                    }
                }
                hooks.onStep()
            }
            active = active.enumerated().filter { stepping[$0.offset] }.map(\.element)
            if active.isEmpty { break }
        }
        // A non-finite step (never seen; a guard, since the prompt is stored) keeps the start.
        return cases.indices.map { k in p[k].allSatisfy(\.isFinite) ? (p[k], steps[k], loss[k]) : (prompts[k], 0, .nan) }
    }
}
