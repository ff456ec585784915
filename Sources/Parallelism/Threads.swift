// How many threads every parallel loop of the process uses: the Swift kernels, key search,
// the quantized-key build and dequantization (OpenBLAS follows through Kernels'
// `BLASThreads`). `RECIPE_THREADS` if set, else the active processors; `--threads` sets it.
import Foundation
#if os(Linux)
import Synchronization
#endif

public enum Threads {
    #if os(Linux)
    private static let stored = Atomic<Int>(fromEnvironment())
    #else
    nonisolated(unsafe) private static var stored = fromEnvironment()
    #endif
    /// Serializes `set` and `withCount`, so that a test's count holds for its whole body.
    private static let writer = NSRecursiveLock()

    /// The thread count every parallel loop splits its work by (at least 1).
    public static var count: Int {
        #if os(Linux)
        stored.load(ordering: .relaxed)
        #else
        stored
        #endif
    }

    /// Sets the count for every parallel loop (and, at its next sgemm, OpenBLAS). Call
    /// before work starts: a loop already running keeps the split it began with, and the
    /// spinning pool under `parallelFor` keeps the workers it has started (a lower count
    /// narrows every split, but the extra workers still wake for each loop).
    public static func set(_ n: Int) {
        precondition(n > 0, "thread count must be positive")
        writer.lock(); defer { writer.unlock() }
        #if os(Linux)
        stored.store(n, ordering: .relaxed)
        #else
        stored = n
        #endif
    }

    /// Runs `body` with the count set to `n`, then restores it. Callers of `withCount` and
    /// `set` on other threads wait until `body` returns (tests run in parallel).
    public static func withCount<R>(_ n: Int, _ body: () throws -> R) rethrows -> R {
        writer.lock(); defer { writer.unlock() }
        let before = count
        set(n)
        defer { set(before) }
        return try body()
    }

    /// Whether `parallelFor` uses the spinning `WorkerPool` (Linux) instead of GCD.
    /// `RECIPE_POOL=0` turns it off.
    public static let usePool: Bool = ProcessInfo.processInfo.environment["RECIPE_POOL"] != "0"

    /// `RECIPE_THREADS` when it is a positive integer, else the active processors.
    static func fromEnvironment() -> Int {
        if let s = ProcessInfo.processInfo.environment["RECIPE_THREADS"], let v = Int(s), v > 0 { return v }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }
}
