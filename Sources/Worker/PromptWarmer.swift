// Computes the prompt states (`AnswerEngine.prepare`) of facts as they are committed, on
// its own thread, so that the first question about a new fact reads its prompt's keys and
// values instead of prefilling them. It follows the published snapshots: the rows appended
// since the last one it saw, newest `capacity` at most (older ones would be pushed out of
// the store by the newer ones anyway). Facts that were in the repository before the worker
// started keep the states they had on disk; any fact without them gets them at its first
// ask. Best effort by design: a failure is logged and the fact is left to its first ask,
// and the acknowledgement of a fact never waits for this.
import Foundation
import Glibc
import Storage

final class PromptWarmer: @unchecked Sendable {
    /// Prompts per prefill: four share one read of the weights (~7 ms each instead of ~14)
    /// and hold the LLM lock for ~27 ms, the longest an ask then waits behind one.
    static let batch = 4

    let repository: Repository
    let engine: AnswerEngine
    let state: WorkerState
    private let done = DispatchSemaphore(value: 0)
    private var started = false

    init(repository: Repository, engine: AnswerEngine, state: WorkerState) {
        self.repository = repository
        self.engine = engine
        self.state = state
    }

    func start() {
        started = true
        let t = Thread { [self] in
            run()
            done.signal()
        }
        t.stackSize = 8 << 20
        t.start()
    }

    /// Waits for the thread to finish its current batch once the worker is stopping.
    func wait(until deadline: Double) -> Bool {
        guard started else { return true }
        return done.wait(timeout: .now() + max(0, deadline - monotonicSeconds())) == .success
    }

    private func run() {
        var snap = repository.snapshot()
        var generation = snap.generation, next = snap.rowCount
        var failures = 0
        while !state.stopping {
            snap = repository.snapshot()
            // A compaction renumbers the rows: start from its end (facts it skipped get
            // their states at their first ask).
            if snap.generation != generation { generation = snap.generation; next = snap.rowCount }
            guard next < snap.rowCount else {
                usleep(50_000)
                continue
            }
            var prepared = 0
            let rows = (max(next, snap.rowCount - engine.promptStateCapacity)..<snap.rowCount).filter { snap.isLive(row: $0) }
            for start in stride(from: 0, to: rows.count, by: Self.batch) {
                if state.stopping { return }
                let some = Array(rows[start..<min(rows.count, start + Self.batch)])
                do {
                    prepared += try engine.prepare(prompts: some.map { snap.prompt(row: $0) })
                } catch {
                    failures += 1
                    if failures <= 10 { state.log.warning("prompt_state_failed", ["rows": some, "error": "\(error)"]) }
                }
            }
            next = snap.rowCount
            if prepared > 0 { state.log.debug("prompt_states_prepared", ["facts": prepared, "time_step": Int(snap.timeStep)]) }
        }
    }
}
