// The spinning thread pool under `parallelFor`, for the fine-grained parallel loops of
// decode (about 120 per token, each ~20-60 µs). Waking a sleeping GCD worker costs
// microseconds per loop; these workers spin for a while after each job (like llama.cpp's
// threadpool) and only then sleep on a condition variable.
//
// One job at a time: its state (generation, chunk count, next chunk) lives in one atomic
// word, so a worker can only claim a chunk of the generation it saw, and the caller returns
// only when every claimed chunk has completed. A second caller (another thread, or a
// chunk that itself calls parallelFor) finds the pool busy and falls back to GCD.
#if os(Linux)
import Foundation
import Synchronization

final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    /// generation (24 bits) | chunk count (20 bits) | next chunk (20 bits)
    private let state = Atomic<UInt64>(0)
    private let completed = Atomic<Int>(0)
    private let jobPointer = Atomic<UInt>(0)
    private let busy = Atomic<Bool>(false)
    private let sleepers = Atomic<Int>(0)
    private let condition = NSCondition()
    private let startLock = NSLock()
    private var started = 0
    private var generation: UInt64 = 0

    private struct Job {
        let body: (Int) -> Void
    }

    /// An idle worker polls `spinIterations` times (~5 µs), then yields the CPU between polls
    /// `yieldIterations` times (~100 µs on an idle machine; on a busy one, other threads run),
    /// then sleeps until the next job.
    static let spinIterations = 5_000
    static let yieldIterations = 200

    private static func gen(_ s: UInt64) -> UInt64 { s >> 40 }
    private static func count(_ s: UInt64) -> Int { Int((s >> 20) & 0xFFFFF) }
    private static func next(_ s: UInt64) -> Int { Int(s & 0xFFFFF) }

    /// Runs body(0..<chunks) on the caller plus `workers` pool threads. Returns false (having
    /// done nothing) when the pool is in use or `chunks` is too large for the state word.
    func run(_ chunks: Int, workers: Int, _ body: (Int) -> Void) -> Bool {
        guard chunks < 0xFFFFF, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            return false
        }
        defer { busy.store(false, ordering: .releasing) }
        ensureWorkers(workers)
        return withoutActuallyEscaping(body) { escapable in
            var job = Job(body: escapable)
            return withUnsafeMutablePointer(to: &job) { jp in
                generation = (generation + 1) & 0xFFFFFF
                jobPointer.store(UInt(bitPattern: jp), ordering: .sequentiallyConsistent)
                completed.store(0, ordering: .sequentiallyConsistent)
                state.store(generation << 40 | UInt64(chunks) << 20, ordering: .sequentiallyConsistent)
                if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                    condition.lock(); condition.broadcast(); condition.unlock()
                }
                work(generation)
                var spins = 0
                while completed.load(ordering: .acquiring) < chunks {
                    spins += 1
                    if spins > Self.spinIterations { sched_yield() }
                }
                return true
            }
        }
    }

    /// Claims and runs chunks of generation `g` until none are left.
    private func work(_ g: UInt64) {
        var s = state.load(ordering: .acquiring)
        while Self.gen(s) == g && Self.next(s) < Self.count(s) {
            let (ok, seen) = state.compareExchange(expected: s, desired: s + 1, ordering: .acquiringAndReleasing)
            if !ok { s = seen; continue }
            // a claimed, unfinished chunk keeps the caller (and its job) alive
            let jp = UnsafePointer<Job>(bitPattern: jobPointer.load(ordering: .acquiring))!
            jp.pointee.body(Self.next(s))
            completed.add(1, ordering: .releasing)
            s = state.load(ordering: .acquiring)
        }
    }

    private func ensureWorkers(_ n: Int) {
        guard started < n else { return }
        startLock.lock()
        while started < n {
            started += 1
            let t = Thread { [unowned self] in self.workerLoop() }
            t.stackSize = 1 << 20
            t.start()
        }
        startLock.unlock()
    }

    private func workerLoop() {
        var last = Self.gen(state.load(ordering: .acquiring))
        while true {
            var spins = 0
            var s = state.load(ordering: .acquiring)
            while Self.gen(s) == last {
                spins += 1
                if spins > Self.spinIterations { sched_yield() }
                if spins >= Self.spinIterations + Self.yieldIterations {
                    sleepers.add(1, ordering: .sequentiallyConsistent)
                    condition.lock()
                    while Self.gen(state.load(ordering: .sequentiallyConsistent)) == last { condition.wait() }
                    condition.unlock()
                    sleepers.subtract(1, ordering: .sequentiallyConsistent)
                    spins = 0
                }
                s = state.load(ordering: .acquiring)
            }
            last = Self.gen(s)
            work(last)
        }
    }
}
#endif
