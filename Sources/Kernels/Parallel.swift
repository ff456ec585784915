// Work splitting across the machine's cores, and the one place where raw pointers are
// allowed to cross into concurrently executed closures. On Linux `parallelFor` runs on the
// spinning WorkerPool (decode issues ~120 short parallel loops per token, too short for
// waking GCD threads); elsewhere, or when the pool is busy, on GCD's concurrentPerform.
import Dispatch
import Foundation
import COpenBLAS

/// A value that is handed to `parallelFor` workers. The workers write disjoint ranges,
/// which the compiler cannot prove, so the promise is made here once instead of at every
/// call site.
public struct UnsafeSendable<Value>: @unchecked Sendable {
    public let value: Value
    @inlinable public init(_ value: Value) { self.value = value }
}

/// Number of worker threads for the Swift kernels and OpenBLAS.
public enum Threads {
    /// `RECIPE_THREADS` if set, else the number of active processors.
    /// Reading it the first time also gives OpenBLAS the same count.
    nonisolated(unsafe) public private(set) static var count: Int = {
        var n = max(1, ProcessInfo.processInfo.activeProcessorCount)
        if let s = ProcessInfo.processInfo.environment["RECIPE_THREADS"], let v = Int(s), v > 0 { n = v }
        openblas_set_num_threads(Int32(n))
        return n
    }()

    /// Whether `parallelFor` uses the spinning `WorkerPool` (Linux) instead of GCD.
    /// `RECIPE_POOL=0` turns it off.
    nonisolated(unsafe) public static var usePool: Bool = ProcessInfo.processInfo.environment["RECIPE_POOL"] != "0"

    /// Sets the thread count for both the Swift kernels and OpenBLAS. Call before work starts.
    public static func set(_ n: Int) {
        precondition(n > 0, "thread count must be positive")
        count = n
        openblas_set_num_threads(Int32(n))
    }
}

/// Runs `body(chunk)` for `chunks` chunks, on `Threads.count` threads when there is
/// more than one chunk and more than one thread; otherwise inline.
public func parallelFor(_ chunks: Int, _ body: (Int) -> Void) {
    if chunks <= 1 || Threads.count <= 1 {
        for i in 0..<chunks { body(i) }
        return
    }
    #if os(Linux)
    if Threads.usePool && WorkerPool.shared.run(chunks, workers: Threads.count - 1, body) { return }
    #endif
    withoutActuallyEscaping(body) { escapable in
        let box = UnsafeSendable(escapable)
        DispatchQueue.concurrentPerform(iterations: chunks) { i in box.value(i) }
    }
}

/// Splits `0..<n` into `Threads.count` contiguous ranges of at least `minimum` items and
/// runs `body(range)` for each in parallel.
@inlinable
public func parallelRanges(_ n: Int, minimum: Int = 1, _ body: (Range<Int>) -> Void) {
    let parts = max(1, min(Threads.count, n / max(1, minimum)))
    let step = (n + parts - 1) / parts
    parallelFor(parts) { p in
        let lo = p * step, hi = min(n, lo + step)
        if lo < hi { body(lo..<hi) }
    }
}
