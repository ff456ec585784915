// Retrieval latency at scale, for `recipe bench`: builds a random key matrix
// [rows, R] in memory, checks `KeySearch.topK` against the naive scan for a few queries,
// warms up, then reports median and p95 of single-query latency and the scan bandwidth.
import Glibc
import Parallelism

public enum RetrievalBenchmark {
    public struct Result: Sendable, CustomStringConvertible {
        public let rows: Int
        public let dimension: Int
        public let threads: Int
        /// Queries per search call (1: one query at a time).
        public let batch: Int
        public let medianMilliseconds: Double
        public let p95Milliseconds: Double
        /// Key bytes scanned per second at the median.
        public let gigabytesPerSecond: Double
        public var description: String {
            let m = (medianMilliseconds * 1000).rounded() / 1000, p = (p95Milliseconds * 1000).rounded() / 1000
            let g = (gigabytesPerSecond * 10).rounded() / 10
            return "rows \(rows) R \(dimension) threads \(threads) batch \(batch): median \(m) ms, p95 \(p) ms per call, \(g) GB/s of keys"
        }
    }

    public enum Failure: Error { case mismatch(query: Int, fast: [SearchHit], naive: [SearchHit]) }

    public static func run(rows: Int, dimension: Int = 256, queries: Int = 20, k: Int = 1, batch batchSize: Int = 1,
                           seed: UInt64 = 1) throws -> Result {
        let queries = max(1, queries), rows = max(1, rows), R = max(1, dimension)
        let batch = max(1, min(batchSize, queries))
        let keys = UnsafeMutableBufferPointer<Float>.allocate(capacity: rows * R)
        defer { keys.deallocate() }
        var x = seed | 1
        func next() -> Float {
            x ^= x >> 12; x ^= x << 25; x ^= x >> 27
            return Float((x &* 0x2545_F491_4F6C_DD1D) >> 40) / Float(1 << 23) - 1
        }
        for i in 0..<keys.count { keys[i] = next() }
        let live = [Bool](repeating: true, count: rows)
        let qs = (0..<queries).map { _ in (0..<R).map { _ in next() } }
        let base = UnsafePointer(keys.baseAddress!)
        func search(_ q: [Float], naive: Bool) -> [SearchHit] {
            live.withUnsafeBufferPointer { l in
                q.withUnsafeBufferPointer { qp in
                    naive ? KeySearch.topKNaive(keys: base, dimension: R, rows: 0..<rows, live: l, query: qp.baseAddress!, k: k)
                          : KeySearch.topK(keys: base, dimension: R, rows: 0..<rows, live: l, query: qp.baseAddress!, k: k)
                }
            }
        }
        for (i, q) in qs.prefix(2).enumerated() {
            let fast = search(q, naive: false), slow = search(q, naive: true)
            guard fast.map(\.row) == slow.map(\.row) else { throw Failure.mismatch(query: i, fast: fast, naive: slow) }
        }
        let flat = qs.flatMap { $0 }
        func searchBatch(_ first: Int) -> [[SearchHit]] {
            live.withUnsafeBufferPointer { l in
                flat.withUnsafeBufferPointer { qp in
                    KeySearch.topK(keys: base, dimension: R, rows: 0..<rows, live: l, queries: qp.baseAddress! + first * R,
                                   count: batch, k: k)
                }
            }
        }
        if batch > 1 {
            guard searchBatch(0)[0] == search(qs[0], naive: false) else {
                throw Failure.mismatch(query: 0, fast: searchBatch(0)[0], naive: search(qs[0], naive: false))
            }
        }
        _ = search(qs[0], naive: false)  // warm-up
        var times: [Double] = []
        for i in 0..<(batch > 1 ? max(1, queries / batch) : queries) {
            let t0 = now()
            if batch > 1 { _ = searchBatch((i * batch) % max(1, queries - batch + 1)) } else { _ = search(qs[i], naive: false) }
            times.append(now() - t0)
        }
        times.sort()
        let median = times[times.count / 2]
        let p95 = times[min(times.count - 1, Int(Double(times.count) * 0.95))]
        return Result(rows: rows, dimension: R, threads: Threads.count, batch: batch, medianMilliseconds: median * 1000,
                      p95Milliseconds: p95 * 1000, gigabytesPerSecond: Double(rows * R * 4) / median / 1e9)
    }

    private static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
