// The base under every parallel loop: the SIMD dot against its naive twin, work splits
// that follow the one thread count, and parallel loops that visit every index once.
// Tests that set the process-wide count keep it at 3 or less: the pool keeps the workers
// a larger count starts, and other suites run alongside.
import Parallelism
import Testing
import TestSupport

@Suite struct DotTests {
    @Test(arguments: [0, 1, 7, 15, 16, 17, 31, 64, 100, 257, 1024])
    func dotMatchesNaive(n: Int) {
        var rng = SeededRandom(seed: UInt64(n) + 11)
        let a = (0..<n).map { _ in rng.float() }, b = (0..<n).map { _ in rng.float() }
        let fast = dot(a, b, n), slow = dotNaive(a, b, n)
        let scale = zip(a, b).reduce(Float(1)) { $0 + abs($1.0 * $1.1) }
        #expect(abs(fast - slow) <= 1e-6 * scale, "n \(n): |fast - naive| = \(abs(fast - slow)), scale \(scale)")
    }

    @Test func dotIsExactOnSmallIntegers() {
        let a = (0..<300).map { Float($0 % 7) - 3 }, b = (0..<300).map { Float($0 % 5) - 2 }
        #expect(dot(a, b, 300) == dotNaive(a, b, 300))
        #expect(dot(a, b, 0) == 0 && dotNaive(a, b, 0) == 0)
    }
}

@Suite struct WorkSplitTests {
    @Test func partsFollowTheThreadCount() {
        for threads in [1, 2, 3, 8] {
            #expect(WorkSplit(10_000, minimum: 10, threads: threads).parts == threads)
            #expect(WorkSplit(10_000, minimum: 10, perThread: 4, threads: threads).parts == 4 * threads)
            // Never parts smaller than `minimum`, one part for tiny inputs.
            #expect(WorkSplit(25, minimum: 10, threads: threads).parts == min(threads, 2))
            #expect(WorkSplit(0, minimum: 10, threads: threads).parts == 1)
        }
    }

    @Test func theDefaultIsTheProcessCount() {
        for threads in [1, 3] {
            Threads.withCount(threads) {
                #expect(Threads.count == threads)
                #expect(WorkSplit(10_000, minimum: 10) == WorkSplit(10_000, minimum: 10, threads: threads))
            }
        }
    }

    @Test(arguments: [0, 1, 5, 99, 1000, 1001])
    func rangesCoverEveryIndexOnce(n: Int) {
        for threads in [1, 3, 4] {
            for minimum in [1, 7, 64] {
                let split = WorkSplit(n, minimum: minimum, perThread: 2, threads: threads)
                let covered = split.ranges.flatMap { Array($0) }
                #expect(covered == Array(0..<n), "n \(n), threads \(threads), minimum \(minimum)")
            }
        }
    }
}

@Suite struct ParallelLoopTests {
    @Test func parallelRangesWritesEveryIndexOnce() {
        for threads in [1, 2, 3] {
            Threads.withCount(threads) {
                let n = 100_003
                let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: n)
                counts.initialize(repeating: 0)
                defer { counts.deallocate() }
                parallelRanges(n, minimum: 1000) { r in for i in r { counts[i] += 1 } }
                #expect(counts.allSatisfy { $0 == 1 }, "threads \(threads)")
            }
        }
    }

    @Test func parallelForRunsEveryChunkOnceEvenNested() {
        Threads.withCount(3) {
            let chunks = 64
            let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: chunks * 4)
            counts.initialize(repeating: 0)
            defer { counts.deallocate() }
            // A chunk that itself calls parallelFor finds the pool busy and takes GCD.
            parallelFor(chunks) { c in parallelFor(4) { j in counts[c * 4 + j] += 1 } }
            #expect(counts.allSatisfy { $0 == 1 })
        }
    }
}
