// Work splitting across `Threads.count` threads, for every module. On Linux `parallelFor`
// runs on the spinning WorkerPool (decode issues ~120 short parallel loops per token, too
// short for waking GCD threads); elsewhere, or when the pool is busy (another caller, or a
// chunk that itself calls parallelFor), on GCD's concurrentPerform.
import Dispatch

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

/// Splits `0..<n` into `WorkSplit(n, minimum:, perThread:)` and runs `body(range)` for
/// each part in parallel. Workers must write disjoint memory.
@inlinable
public func parallelRanges(_ n: Int, minimum: Int = 1, perThread: Int = 1, _ body: (Range<Int>) -> Void) {
    let split = WorkSplit(n, minimum: minimum, perThread: perThread)
    parallelFor(split.parts) { p in
        let r = split[p]
        if !r.isEmpty { body(r) }
    }
}
