// How a parallel loop cuts `0..<n` into contiguous parts: by `Threads.count`, the one
// count of the process, so that `--threads` reaches every loop that splits work this way.

/// `0..<n` in `parts` contiguous ranges of `step` items (the last may be shorter or, for
/// tiny n, empty).
public struct WorkSplit: Sendable, Equatable {
    public let n: Int
    public let parts: Int
    public let step: Int

    /// `perThread` parts per thread (more parts balance the load when a thread is
    /// preempted), each of at least `minimum` items; one part when `n < 2 * minimum`.
    /// `threads` is `Threads.count` except in tests of the arithmetic.
    @inlinable
    public init(_ n: Int, minimum: Int = 1, perThread: Int = 1, threads: Int = Threads.count) {
        self.n = max(0, n)
        parts = max(1, min(max(1, threads) * max(1, perThread), self.n / max(1, minimum)))
        step = (self.n + parts - 1) / parts
    }

    /// The range of part `p` (0 ..< parts).
    @inlinable
    public subscript(p: Int) -> Range<Int> {
        let lo = min(n, p * step)
        return lo..<min(n, lo + step)
    }

    public var ranges: [Range<Int>] { (0..<parts).map { self[$0] } }
}
