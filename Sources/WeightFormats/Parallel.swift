// A minimal work splitter for this module (it cannot depend on Kernels, whose
// `parallelRanges` it mirrors): `RECIPE_THREADS` or the active processor count.
import Dispatch
import Foundation

enum WorkSplit {
    static let threads: Int = {
        if let s = ProcessInfo.processInfo.environment["RECIPE_THREADS"], let n = Int(s), n > 0 { return n }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// Runs `body` over contiguous sub-ranges of `0..<n` of at least `minimum` items, in
    /// parallel when there is more than one. Workers must write disjoint memory.
    static func ranges(_ n: Int, minimum: Int, _ body: (Range<Int>) -> Void) {
        let parts = max(1, min(threads * 4, n / max(1, minimum)))
        if parts == 1 { body(0..<n); return }
        let step = (n + parts - 1) / parts
        withoutActuallyEscaping(body) { escapable in
            let box = SendableBox(escapable)
            DispatchQueue.concurrentPerform(iterations: parts) { p in
                let lo = p * step, hi = min(n, lo + step)
                if lo < hi { box.value(lo..<hi) }
            }
        }
    }
}

/// Carries a closure or pointer into `concurrentPerform`; safe because workers write
/// disjoint ranges.
struct SendableBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
