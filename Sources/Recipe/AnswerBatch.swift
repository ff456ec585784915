// Many answers generated together (continuous batching): each is an `AnswerState` with its
// own KV cache and its own injection; a step prefills the answers that need it in one
// forward pass over the weights, then appends one token to every answer that has one in
// one decode pass. Answers join between steps (`add`) and leave as they finish, each at
// its own token. The model computes every sequence's rows as it would alone (`Llama`:
// kernels chosen per sequence, the batched matvec bit for bit the single one), so each
// answer is exactly `AnswerGenerator.answer`'s for the same request: tokens, text and stop
// reason. A sequence the model refuses (past the context, say) fails alone: a refused batch
// is run again sequence by sequence.
//
// Not thread-safe: one thread drives it (the worker's scheduler).
import Models

public final class AnswerBatch {
    public let generator: AnswerGenerator
    /// Prefill rows taken in one step: answers waiting for their prefill beyond it wait for
    /// the next step (one at least is taken, however long), so that a burst of long
    /// questions does not hold every running answer's next token for one huge pass.
    public let maxPrefillRows: Int

    /// An answer that ended in a step, with the tag it was added with.
    public struct Finished {
        public let tag: Int
        public let result: Result<GeneratedAnswer, Error>
    }

    final class Member {
        let tag: Int
        var state: AnswerState
        var cache: LlamaKVCache?
        let shouldStop: () -> Bool
        init(tag: Int, state: AnswerState, cache: LlamaKVCache?, shouldStop: @escaping () -> Bool) {
            (self.tag, self.state, self.cache, self.shouldStop) = (tag, state, cache, shouldStop)
        }
    }

    /// In the order they joined.
    private var members: [Member] = []

    public init(generator: AnswerGenerator, maxPrefillRows: Int = 512) {
        self.generator = generator
        self.maxPrefillRows = max(1, maxPrefillRows)
    }

    /// Answers in progress.
    public var count: Int { members.count }
    /// Their tags, in the order they joined.
    public var tags: [Int] { members.map(\.tag) }

    /// Adds an answer, with the arguments of `AnswerGenerator.answer` (`cache`: one holding
    /// the injection's prefix rows, an empty one, or nil); it takes its first step with the
    /// next `step()`. `shouldStop` is asked once per token, as `answer` asks it.
    public func add(tag: Int, question: [Int], injection: Injection, maxTokens: Int, stop: [String] = [], handOff: Bool = false,
                    cache: LlamaKVCache? = nil, shouldStop: @escaping () -> Bool = { false }) {
        let state = AnswerState(generator, question: question, injection: injection, maxTokens: maxTokens, stop: stop,
                                handOff: handOff, prefilled: (cache?.count ?? 0) > 0)
        members.append(Member(tag: tag, state: state, cache: cache, shouldStop: shouldStop))
    }

    /// One step: the waiting prefills (in the order the answers joined, up to
    /// `maxPrefillRows`) in one forward pass, then one token for every answer that has one
    /// to append (those just prefilled too) in one decode pass. Returns the answers that
    /// ended in it (finished, cancelled or failed); they have left the batch.
    public func step() -> [Finished] {
        var failed: [ObjectIdentifier: Error] = [:]
        let llama = generator.lm.llama
        let C = llama.config.embeddingLength

        var prefills: [(Member, LlamaSequence)] = []
        var rows = 0
        for m in members {
            guard case let .prefill(sequence, fresh) = m.state.step else { continue }
            let n = sequence.tokens.count + sequence.prefix.count / C
            if !prefills.isEmpty && rows + n > maxPrefillRows { break }
            if fresh || m.cache == nil { m.cache = llama.makeCache(capacity: m.state.cacheCapacity) }
            prefills.append((m, sequence))
            rows += n
        }
        if !prefills.isEmpty {
            run(prefills.map { $0.0 }, failed: &failed) { batch in
                let seqs = batch.map { m in prefills.first { $0.0 === m }!.1 }
                return try llama.forward(batch: seqs, caches: batch.map { $0.cache! }, logits: .last).map(\.last)
            }
        }

        let decoding = members.filter { if case .decode = $0.state.step { failed[ObjectIdentifier($0)] == nil } else { false } }
        if !decoding.isEmpty {
            run(decoding, failed: &failed) { batch in
                let tokens = batch.map { m -> Int in if case let .decode(t) = m.state.step { return t } else { return 0 } }
                return try llama.decode(tokens: tokens, caches: batch.map { $0.cache! }).map { $0[...] }
            }
        }

        var ended: [Finished] = []
        members.removeAll { m in
            if let e = failed[ObjectIdentifier(m)] {
                ended.append(Finished(tag: m.tag, result: .failure(e)))
                return true
            }
            if case let .finished(answer) = m.state.step {
                ended.append(Finished(tag: m.tag, result: .success(answer)))
                return true
            }
            return false
        }
        return ended
    }

    /// Runs `pass` over `batch` and hands each member its logits; when the model refuses the
    /// batch, each member alone, so that only the one at fault fails.
    private func run(_ batch: [Member], failed: inout [ObjectIdentifier: Error],
                     _ pass: ([Member]) throws -> [ArraySlice<Float>]) {
        let outputs: [Result<ArraySlice<Float>, Error>]
        do {
            outputs = try pass(batch).map { .success($0) }
        } catch {
            outputs = batch.count == 1 ? [.failure(error)] : batch.map { m in Result { try pass([m])[0] } }
        }
        for (m, output) in zip(batch, outputs) {
            do {
                _ = try m.state.next(logits: try output.get(), cacheCount: m.cache!.count, shouldStop: m.shouldStop)
            } catch {
                failed[ObjectIdentifier(m)] = error
            }
        }
    }
}
