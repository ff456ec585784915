// Continuous batching gives every request the answer `AnswerGenerator.answer` gives it alone
// (tokens, text, stop reason), on the real model: plain questions, continuous prompts with
// and without the hand-off, a prompt whose keys and values are cached already, in-context
// text, chat turns, stop strings, different max_tokens, answers that end at different steps,
// answers that join while others run, a cancelled one and one the model refuses.
import Foundation
import Models
import Recipe
import TestSupport
import Testing

@Suite struct AnswerBatchTests {
    struct Request {
        var question: [Int]
        var injection: Injection
        var maxTokens: Int
        var stop: [String] = []
        var handOff = false
        /// Generate in a KV cache that holds the prompt's rows already.
        var prefilled = false
    }

    static func prompt(_ step: Double, _ scale: Float, C: Int) -> [Float] {
        (0..<(3 * C)).map { i in Float(sin(Double(i) * step)) * scale }
    }

    func cache(_ g: AnswerGenerator, _ r: Request) throws -> LlamaKVCache? {
        guard r.prefilled, case let .prompt(p) = r.injection else { return nil }
        let c = g.lm.llama.makeCache()
        _ = try g.lm.llama.forward(LlamaSequence(tokens: [], prefix: p), cache: c, logits: .none)
        return c
    }

    @Test func batchedAnswersEqualAnswersAlone() throws {
        let lm = try LanguageModel(path: Fixtures.smolLM2.path)
        let g = AnswerGenerator(lm: lm, model: nil)
        let C = lm.llama.config.embeddingLength
        let p1 = Self.prompt(0.11, 0.5, C: C), p2 = Self.prompt(0.37, 0.05, C: C), p3 = Self.prompt(0.23, 1.5, C: C)
        let q1 = lm.tokenizer.encode("The capital of France is"), q2 = lm.tokenizer.encode("The mother tongue of Danielle Darrieux is")
        let q3 = try g.tokens(of: "What is the capital of Italy?", chat: true), q4 = lm.tokenizer.encode("Toko Yasuda plays the")
        let free = try g.answer(q1, injection: .nothing, maxTokens: 16)
        let words = free.text.split(separator: " ")
        try #require(words.count >= 4, "\(free.text)")
        let requests = [
            Request(question: q1, injection: .nothing, maxTokens: 16),
            Request(question: q1, injection: .prompt(p3), maxTokens: 16, handOff: true),
            Request(question: q2, injection: .prompt(p2), maxTokens: 8, prefilled: true),
            Request(question: q3, injection: .nothing, maxTokens: 12),
            Request(question: q1, injection: .nothing, maxTokens: 16, stop: [" " + words[2], "never appears"]),
            // these join two steps later
            Request(question: q4, injection: .text("Toko Yasuda plays the violin.\n"), maxTokens: 3),
            Request(question: q2, injection: .prompt(p1), maxTokens: 1, handOff: true),
            Request(question: q4, injection: .prompt(p2), maxTokens: 16, stop: ["\n"], handOff: true, prefilled: true),
            Request(question: q3, injection: .prompt(p1), maxTokens: 10, handOff: true),
            Request(question: q1, injection: .prompt(p3), maxTokens: 16, handOff: false),
            Request(question: q2, injection: .promptAndText(p2, "Danielle Darrieux speaks English.\n"), maxTokens: 12, handOff: true),
        ]
        let batch = AnswerBatch(generator: g)
        var results: [Int: GeneratedAnswer] = [:], endedAt: [Int: Int] = [:]
        func add(_ i: Int) throws {
            let r = requests[i]
            batch.add(tag: i, question: r.question, injection: r.injection, maxTokens: r.maxTokens, stop: r.stop, handOff: r.handOff,
                      cache: try cache(g, r))
        }
        for i in 0..<5 { try add(i) }
        var steps = 0
        while batch.count > 0 {
            if steps == 2 { for i in 5..<requests.count { try add(i) } }
            for f in batch.step() {
                results[f.tag] = try f.result.get()
                endedAt[f.tag] = steps
            }
            steps += 1
            try #require(steps < 100, "the batch does not finish")
        }
        #expect(results.count == requests.count)
        for (i, r) in requests.enumerated() {
            let alone = try g.answer(r.question, injection: r.injection, maxTokens: r.maxTokens, stop: r.stop, handOff: r.handOff,
                                     cache: try cache(g, r))
            let got = try #require(results[i])
            #expect(got.tokens == alone.tokens, "request \(i): \(got.tokens) batched, \(alone.tokens) alone")
            #expect(got.text == alone.text && got.stopReason == alone.stopReason,
                    "request \(i): \(got.text.debugDescription) \(got.stopReason) batched, \(alone.text.debugDescription) \(alone.stopReason) alone")
        }
        // the set covers what it should: every stop reason but cancellation, a hand-off, and
        // answers ending at different steps
        let reasons = Set(results.values.map(\.stopReason))
        #expect(reasons.isSuperset(of: [.length, .stop]) && (reasons.contains(.eos) || results[3]!.tokens.count < 12), "\(reasons)")
        #expect(results[1]!.tokens != results[9]!.tokens, "request 1 should hand off (it differs from request 9 without)")
        #expect(Set(endedAt.values).count > 2, "\(endedAt)")
    }

    @Test func aCancelledOrRefusedAnswerLeavesAlone() throws {
        let lm = try LanguageModel(path: Fixtures.smolLM2.path)
        let g = AnswerGenerator(lm: lm, model: nil)
        let q = lm.tokenizer.encode("The capital of France is")
        let batch = AnswerBatch(generator: g)
        nonisolated(unsafe) var polls = 0
        batch.add(tag: 0, question: q, injection: .nothing, maxTokens: 8)
        batch.add(tag: 1, question: q, injection: .nothing, maxTokens: 8, shouldStop: { polls += 1; return polls > 2 })
        batch.add(tag: 2, question: [lm.llama.config.vocabSize], injection: .nothing, maxTokens: 8)
        batch.add(tag: 3, question: q, injection: .nothing, maxTokens: 0)
        var results: [Int: Result<GeneratedAnswer, Error>] = [:]
        while batch.count > 0 { for f in batch.step() { results[f.tag] = f.result } }
        let alone = try g.answer(q, injection: .nothing, maxTokens: 8)
        #expect(try results[0]!.get() == alone)
        let cancelled = try results[1]!.get()
        #expect(cancelled.stopReason == .cancelled && cancelled.tokens == Array(alone.tokens.prefix(3)), "\(cancelled)")
        #expect(throws: ModelError.self) { try results[2]!.get() }
        #expect(try results[3]!.get() == GeneratedAnswer(text: "", tokens: [], stopReason: .length))
    }
}
