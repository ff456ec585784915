// Time-step throughput and recovery time, for `recipe bench`: commits `facts` statements
// in steps of `perStep` into a fresh repository under `directory` with the given encoder
// (the HashingFactEncoder isolates storage cost from model cost), checks that every fact
// is retrievable, then times a clean reopen, a full rebuild and a compaction.
import Glibc
import Posix

public enum RepositoryBenchmark {
    public struct Result: Sendable, CustomStringConvertible {
        public let facts: Int
        public let perStep: Int
        public let factsPerSecond: Double
        public let stepMedianMilliseconds: Double
        public let stepP95Milliseconds: Double
        public let reopenSeconds: Double
        public let rebuildSeconds: Double
        public let compactSeconds: Double
        public let bytesOnDisk: Int

        public var description: String {
            func r(_ x: Double, _ d: Double = 10) -> Double { (x * d).rounded() / d }
            return "\(facts) facts in steps of \(perStep): \(Int(factsPerSecond)) facts/s, step median \(r(stepMedianMilliseconds)) ms, "
                + "p95 \(r(stepP95Milliseconds)) ms; reopen \(r(reopenSeconds, 100)) s, full re-encode \(r(rebuildSeconds, 100)) s, "
                + "compaction \(r(compactSeconds, 100)) s; \(bytesOnDisk / 1_048_576) MiB on disk"
        }
    }

    public enum Failure: Error { case notRetrievable(String) }

    public static func run(directory: String, encoder: HashingFactEncoder, facts: Int = 10_000, perStep: Int = 1000,
                           options: RepositoryOptions = RepositoryOptions()) throws -> Result {
        let dir = directory + "/bench-\(getpid())-\(Int(now() * 1000))"
        defer { removeTree(dir) }
        var repo = try Repository(path: dir, encoder: encoder, options: options)
        var steps: [Double] = []
        let t0 = now()
        var made = 0
        while made < facts {
            let n = min(perStep, facts - made)
            let ops = (made..<made + n).map { FactOperation.add(statement: "Benchmark statement number \($0)") }
            let t = now()
            _ = try repo.commit(ops)
            steps.append(now() - t)
            made += n
        }
        let elapsed = now() - t0
        for i in stride(from: 0, to: facts, by: max(1, facts / 10)) {
            let s = "Benchmark statement number \(i)"
            guard try repo.snapshot().search(encoder.key(for: s), k: 1).hits.first?.fact.statement == s else {
                throw Failure.notRetrievable(s)
            }
        }
        try repo.close()
        var t = now()
        repo = try Repository(path: dir, encoder: encoder, options: options)
        let reopen = now() - t
        try repo.close()
        try posix { try FileSystem.unlink(dir + "/MANIFEST") }
        t = now()
        repo = try Repository(path: dir, encoder: encoder, options: options)
        let rebuild = now() - t
        t = now()
        _ = try repo.compact()
        let compact = now() - t
        let bytes = ((try? FileSystem.list(dir)) ?? []).reduce(0) { $0 + (FileSystem.size(dir + "/" + $1) ?? 0) }
        try repo.close()
        steps.sort()
        return Result(facts: facts, perStep: perStep, factsPerSecond: Double(facts) / elapsed,
                      stepMedianMilliseconds: steps[steps.count / 2] * 1000,
                      stepP95Milliseconds: steps[min(steps.count - 1, Int(Double(steps.count) * 0.95))] * 1000,
                      reopenSeconds: reopen, rebuildSeconds: rebuild, compactSeconds: compact, bytesOnDisk: bytes)
    }

    private static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Removes the benchmark's own directory (files and the torn/ subdirectory).
    private static func removeTree(_ dir: String) {
        for name in (try? FileSystem.list(dir)) ?? [] {
            let p = dir + "/" + name
            if FileSystem.isDirectory(p) { removeTree(p) } else { try? FileSystem.unlink(p) }
        }
        try? FileSystem.removeDirectory(dir)
    }
}
