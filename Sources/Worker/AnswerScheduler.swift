// Continuous batching of the worker's asks. Every `ask` thread hands its request to the
// scheduler and waits; one thread (started when the first ask arrives, gone when none is
// left) drives an `AnswerBatch`: at each token boundary the asks that arrived join (their
// prefills in one pass), every running answer gets its next token in one decode pass over
// the weights, and finished answers leave and wake their threads. The weights (~97 MB for
// SmolLM2) are read once per step for all answers, but each answer's multiply-adds remain:
// on 2 cores 32 answers decode at 1.4-2× the tokens/s of one (docs/engineering-log.md,
// 2026-12-07). Each answer is token for token what `AnswerGenerator.answer` gives alone
// (`AnswerBatchTests`).
//
// Bounds: at most `maxBatch` answers run together (`limits.maxBatch`); later asks wait in
// arrival order and join as others finish. Cancellation (a client gone, a shutdown) is
// asked before an ask joins and after each of its tokens, so a gone client's answer
// leaves the batch at the next step.
import Foundation
import Models
import Recipe

final class AnswerScheduler: @unchecked Sendable {
    struct Ask {
        let question: [Int]
        let injection: Injection
        let maxTokens: Int
        let stop: [String]
        let handOff: Bool
        let shouldStop: @Sendable () -> Bool
    }

    /// What an ask needs on the driving thread as it joins: the KV cache to generate in (nil:
    /// a new one), and the prefix rows to keep from that cache once it is answered (nil:
    /// nothing to keep). Runs under `lock`.
    typealias Join = (Ask) -> (cache: LlamaKVCache?, keep: [Float]?)
    /// Keeps a fresh prefix's rows from the cache an answer was prefilled into.
    typealias Keep = (_ prefix: [Float], _ cache: LlamaKVCache) -> Void

    private final class Pending {
        let ask: Ask
        let done = DispatchSemaphore(value: 0)
        var result: Result<GeneratedAnswer, Error>?
        var cache: LlamaKVCache?
        var keep: [Float]?
        init(_ ask: Ask) { self.ask = ask }
    }

    let maxBatch: Int
    private let batch: AnswerBatch
    /// The LLM, held for each step (the engine's `prepare` takes it between steps).
    private let llm: NSLock
    private let join: Join
    private let keep: Keep
    /// Guards `waiting`, `driving` and `counts`.
    private let queue = NSLock()
    private var waiting: [Pending] = []
    private var driving = false
    private var counts = BatchCounts()
    /// Answers in the batch by tag (the driving thread's alone).
    private var running: [Int: Pending] = [:]
    private var nextTag = 0

    init(generator: AnswerGenerator, maxBatch: Int, lock: NSLock, join: @escaping Join, keep: @escaping Keep) {
        self.maxBatch = max(1, maxBatch)
        counts.max = self.maxBatch
        batch = AnswerBatch(generator: generator)
        llm = lock
        self.join = join
        self.keep = keep
    }

    var snapshot: BatchCounts { queue.withLock { counts } }

    /// The answer to `ask`, generated together with every other ask in flight; blocks the
    /// calling thread until it is finished.
    func answer(_ ask: Ask) throws -> GeneratedAnswer {
        let pending = Pending(ask)
        let start = queue.withLock { () -> Bool in
            waiting.append(pending)
            counts.waiting = waiting.count
            let start = !driving
            driving = true
            return start
        }
        if start { Thread.detachNewThread { [self] in drive() } }
        pending.done.wait()
        return try pending.result!.get()
    }

    /// The driving loop: steps until no ask is running or waiting.
    private func drive() {
        while true {
            let joining = queue.withLock { () -> [Pending] in
                let n = min(maxBatch - running.count, waiting.count)
                let taken = Array(waiting.prefix(n))
                waiting.removeFirst(n)
                counts.waiting = waiting.count
                if taken.isEmpty && running.isEmpty { driving = false }
                return taken
            }
            if joining.isEmpty && running.isEmpty { return }
            llm.withLock {
                for p in joining {
                    // The client may have left while this ask waited: skip its prefill.
                    if p.ask.shouldStop() {
                        finish(p, .success(GeneratedAnswer(text: "", tokens: [], stopReason: .cancelled)))
                        continue
                    }
                    (p.cache, p.keep) = join(p.ask)
                    running[nextTag] = p
                    batch.add(tag: nextTag, question: p.ask.question, injection: p.ask.injection, maxTokens: p.ask.maxTokens,
                              stop: p.ask.stop, handOff: p.ask.handOff, cache: p.cache, shouldStop: p.ask.shouldStop)
                    nextTag &+= 1
                }
                let size = batch.count
                let ended = batch.step()
                for f in ended {
                    let p = running.removeValue(forKey: f.tag)!
                    if case .success = f.result, let prefix = p.keep, let cache = p.cache, cache.count > 0 { keep(prefix, cache) }
                    finish(p, f.result)
                }
                queue.withLock {
                    counts.steps += 1
                    counts.largest = max(counts.largest, size)
                    counts.running = running.count
                }
            }
        }
    }

    private func finish(_ p: Pending, _ result: Result<GeneratedAnswer, Error>) {
        p.result = result
        p.done.signal()
    }
}

/// What the scheduler is doing (`stats` and `metrics`).
public struct BatchCounts: Sendable, Equatable {
    /// Answers in the batch now, and asks waiting to join it.
    public var running = 0, waiting = 0
    /// Most answers that ran together in one step since the start, and the bound.
    public var largest = 0, max = 0
    /// Steps taken (each one prefill pass and/or one decode pass).
    public var steps = 0
}
