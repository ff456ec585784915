// `AnswerGenerator` on the real model: stop strings cut the answer where they start and
// end the generation; the reasons are told apart; a cache already holding the prefix gives the same answer as a full prefill.
import Foundation
import Models
import Recipe
import TestSupport
import Testing

@Suite struct AnswerGeneratorTests {
    @Test func stopStringsLengthAndCancellation() throws {
        let lm = try LanguageModel(path: Fixtures.smolLM2.path)
        let g = AnswerGenerator(lm: lm, model: nil)
        let question = lm.tokenizer.encode("The capital of France is")
        let free = try g.answer(question, injection: .nothing, maxTokens: 16)
        #expect(free.stopReason == .length && free.tokens.count == 16, "\(free)")
        #expect(free.text == (try lm.tokenizer.decode(free.tokens, skipSpecial: true)))

        // A stop string taken from the middle of the free answer: the answer ends before it.
        let words = free.text.split(separator: " ")
        try #require(words.count >= 4, "\(free.text)")
        let stop = " " + words[2]
        let cut = try g.answer(question, injection: .nothing, maxTokens: 16, stop: [stop, "never appears"])
        let expected = String(free.text[..<free.text.range(of: stop)!.lowerBound])
        #expect(cut.stopReason == .stop && cut.text == expected, "\(cut) vs \(expected)")
        #expect(cut.tokens.count < 16 && free.tokens.starts(with: cut.tokens))

        var polls = 0
        let cancelled = try g.answer(question, injection: .nothing, maxTokens: 16, shouldStop: { polls += 1; return polls > 2 })
        #expect(cancelled.stopReason == .cancelled && cancelled.tokens.count == 3, "\(cancelled)")
    }

    @Test func aKeptPrefixGivesTheAnswerOfAFullPrefill() throws {
        let lm = try LanguageModel(path: Fixtures.smolLM2.path)
        let g = AnswerGenerator(lm: lm, model: nil)
        let C = lm.llama.config.embeddingLength
        let prompt = (0..<(3 * C)).map { i in Float(sin(Double(i) * 0.37)) * 0.05 }
        let question = lm.tokenizer.encode("The mother tongue of Danielle Darrieux is")
        let plain = try g.answer(question, injection: .nothing, maxTokens: 8)
        let full = try g.answer(question, injection: .prompt(prompt), maxTokens: 8)
        let (sequence, shift) = g.input(question, injection: .prompt(prompt))
        #expect(shift == 3 && sequence.prefix == prompt && sequence.tokens == question)
        // The prompt's rows prefilled first, then the question continued from them.
        let cache = lm.llama.makeCache(capacity: 3 + question.count + 8)
        _ = try lm.llama.forward(LlamaSequence(tokens: [], prefix: prompt), cache: cache, logits: .none)
        let kept = try g.answer(question, injection: .prompt(prompt), maxTokens: 8, cache: cache)
        #expect(kept.tokens == full.tokens && kept.text == full.text)
        #expect(plain.tokens.count == 8 || plain.stopReason == .eos)
    }

    /// The hand-off: the answer is the prompted answer's first tokens, then the unedited
    /// model's own continuation of the question and those tokens (no prompt in front).
    @Test func theHandOffContinuesWithTheUneditedModel() throws {
        let lm = try LanguageModel(path: Fixtures.smolLM2.path)
        let g = AnswerGenerator(lm: lm, model: nil)
        let C = lm.llama.config.embeddingLength
        let prompt = (0..<(3 * C)).map { i in Float(sin(Double(i) * 0.11)) * 0.5 }
        let question = lm.tokenizer.encode("The capital of France is")
        let kept = try g.answer(question, injection: .prompt(prompt), maxTokens: 16, handOff: false)
        let handed = try g.answer(question, injection: .prompt(prompt), maxTokens: 16, handOff: true)
        let splits = (1...handed.tokens.count).filter { k in
            guard handed.tokens.prefix(k) == kept.tokens.prefix(k) else { return false }
            let rest = try? g.answer(question + Array(handed.tokens.prefix(k)), injection: .nothing, maxTokens: 16 - k)
            return rest.map { Array(handed.tokens.dropFirst(k)) == $0.tokens } ?? false
        }
        #expect(splits.contains { $0 < handed.tokens.count },
                "a hand-off inside the answer: prompted \(kept.text.debugDescription), handed off \(handed.text.debugDescription)")
        // Without a prompt there is nothing to hand off: the same answer either way.
        let plainHanded = try g.answer(question, injection: .nothing, maxTokens: 8, handOff: true)
        #expect(plainHanded.tokens == (try g.answer(question, injection: .nothing, maxTokens: 8)).tokens)
    }

    /// Each method's injection for a used fact, and `recipe+text`'s input: the prompt rows,
    /// then the statement's tokens, then the question's.
    @Test func eachMethodPutsItsInjectionInFront() throws {
        let lm = try LanguageModel(path: Fixtures.smolLM2.path)
        let g = AnswerGenerator(lm: lm, model: nil)
        let C = lm.llama.config.embeddingLength
        let prompt = (0..<(3 * C)).map { Float($0 % 7) * 0.01 }
        let fact = (prompt: prompt, statement: "Toko Yasuda plays the piano")
        let text = InContextTemplate.prefix(statement: fact.statement)
        #expect(Injection(.none, fact: fact) == .nothing)
        #expect(Injection(.recipe, fact: fact) == .prompt(prompt) && Injection(.oracle, fact: fact) == .prompt(prompt))
        #expect(Injection(.incontext, fact: fact) == .text(text))
        #expect(Injection(.recipeText, fact: fact) == .promptAndText(prompt, text))
        for method in EditMethod.allCases { #expect(Injection(method, fact: nil) == .nothing) }
        #expect(Injection(.recipeText, fact: fact).hasPrompt && !Injection(.incontext, fact: fact).hasPrompt)

        let question = lm.tokenizer.encode("What does Toko Yasuda play?")
        let statement = lm.tokenizer.encode(text)
        let (sequence, shift) = g.input(question, injection: .promptAndText(prompt, text))
        #expect(sequence.prefix == prompt && sequence.tokens == statement + question && shift == 3 + statement.count)
    }

    /// In a chat turn the statement of an in-context method is part of the user's message,
    /// before the question; a prompt stays in front; without chat nothing moves.
    @Test func aChatTurnCarriesTheStatementInTheUsersMessage() {
        let prompt: [Float] = [0.5, -0.25]
        let text = InContextTemplate.prefix(statement: "Toko Yasuda plays the piano")
        let q = "What does Toko Yasuda play?"
        let message = "Fact: Toko Yasuda plays the piano.\nQuestion: What does Toko Yasuda play?"
        #expect(Injection.text(text).placed(in: q, chat: true) == (.nothing, message))
        #expect(Injection.promptAndText(prompt, text).placed(in: q, chat: true) == (.prompt(prompt), message))
        for injection in [Injection.nothing, .prompt(prompt), .text(text), .promptAndText(prompt, text)] {
            #expect(injection.placed(in: q, chat: false) == (injection, q))
        }
        #expect(Injection.prompt(prompt).placed(in: q, chat: true) == (.prompt(prompt), q))
        #expect(Injection.nothing.placed(in: q, chat: true) == (.nothing, q))
    }
}
