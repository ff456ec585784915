// `recipe bench retrieval`: single-query top-k latency over a key matrix [rows, R] at
// several sizes, for the exact f32 scan the repository serves with (`KeySearch.topK`) and
// for the two-stage int8 scan (`Int8KeyIndex`). Each size first checks the exact scan
// against the naive reference, warms up, then reports median/p95/p99; the int8 search
// reports its recall@k against exact search over the same queries, for random queries
// (the hardest case: near-ties everywhere) and for "planted" ones (a stored key plus
// noise, what a query for a stored fact looks like).
import Foundation
import Glibc
import Storage

enum BenchRetrieval {
    static let valued: Set<String> = ["rows", "queries", "dimension", "k", "candidates"]
    static let help = """
        usage: recipe bench retrieval [--rows 10000,100000,1000000] [--queries N] [--dimension R]
                                      [--k K] [--candidates C] [--json]
          --rows LIST      key matrix sizes (default 10000,100000,1000000)
          --queries N      timed queries per size and method (default 200)
          --dimension R    key width (default 256, RECIPE's R)
          --k K            results per query (default 1)
          --candidates C   int8 stage-1 candidates rescored exactly (default 64)
        """

    struct Timing: Codable { var median: Double; var p95: Double; var p99: Double }
    struct Row: Codable {
        var rows: Int
        var exactMilliseconds: Timing
        var exactGBps: Double
        var int8Milliseconds: Timing
        var int8RecallRandom: Double
        var int8RecallPlanted: Double
        var plantedExactHits: Double
    }

    static func run(_ args: inout Arguments, json: Bool) throws -> ExitCode {
        let sizes = try BenchCommand.list(args.string("rows") ?? "10000,100000,1000000", "rows")
        let Q = try args.int("queries", default: 200)
        let R = try args.int("dimension", default: 256)
        let k = try args.int("k", default: 1)
        let C = try args.int("candidates", default: 64)
        try args.rejectUnknown()
        guard Q >= 1, R >= 1, R <= 8192, k >= 1, C >= k else { throw UsageError("need --queries ≥ 1, 1 ≤ --dimension ≤ 8192, --k ≥ 1, --candidates ≥ k") }
        func say(_ s: String) { if !json { print(s) } }
        say("retrieval: R \(R), k \(k), \(Q) queries per size, \(KeySearch.threads) threads, int8 candidates \(C); load \(BenchIngest.loadAverage())")
        var out: [Row] = []
        for n in sizes {
            var rng = BenchRandom(seed: UInt64(n) &* 2654435761 | 1)
            let keys = UnsafeMutableBufferPointer<Float>.allocate(capacity: n * R)
            defer { keys.deallocate() }
            for i in 0..<keys.count { keys[i] = rng.next() }
            let base = UnsafePointer(keys.baseAddress!)
            let live = [Bool](repeating: true, count: n)
            let random = (0..<Q).map { _ in (0..<R).map { _ in rng.next() } }
            let plantedRows = (0..<Q).map { _ in Int(rng.nextInt() % UInt64(n)) }
            let planted = plantedRows.map { row in (0..<R).map { base[row * R + $0] + 0.5 * rng.next() } }

            func exact(_ q: [Float]) -> [SearchHit] {
                live.withUnsafeBufferPointer { l in q.withUnsafeBufferPointer {
                    KeySearch.topK(keys: base, dimension: R, rows: 0..<n, live: l, query: $0.baseAddress!, k: k)
                } }
            }
            // Reference check of the exact scan (the naive twin is slow: 3 queries).
            for q in random.prefix(3) {
                let naive = live.withUnsafeBufferPointer { l in q.withUnsafeBufferPointer {
                    KeySearch.topKNaive(keys: base, dimension: R, rows: 0..<n, live: l, query: $0.baseAddress!, k: k)
                } }
                guard exact(q).map(\.row) == naive.map(\.row) else {
                    IngestOutput.note("recipe bench retrieval: exact scan differs from the naive reference at \(n) rows; not timing it")
                    return .failure
                }
            }
            let t0 = now()
            let index = Int8KeyIndex(keys: base, rows: n, dimension: R)
            let build = now() - t0
            func approximate(_ q: [Float]) -> [SearchHit] {
                live.withUnsafeBufferPointer { l in q.withUnsafeBufferPointer {
                    index.topK(keys: base, live: l, range: 0..<n, query: $0.baseAddress!, k: k, candidates: C, threads: KeySearch.threads)
                } }
            }
            _ = exact(random[0]); _ = approximate(random[0])  // warm-up
            var te: [Double] = [], ta: [Double] = []
            var exactResults: [[SearchHit]] = [], approxResults: [[SearchHit]] = []
            for q in random {
                var t = now(); exactResults.append(exact(q)); te.append(now() - t)
                t = now(); approxResults.append(approximate(q)); ta.append(now() - t)
            }
            func recall(_ a: [[SearchHit]], _ e: [[SearchHit]]) -> Double {
                let hit = zip(a, e).reduce(0) { $0 + Set($1.0.map(\.row)).intersection($1.1.map(\.row)).count }
                return Double(hit) / Double(max(1, e.reduce(0) { $0 + $1.count }))
            }
            let recallRandom = recall(approxResults, exactResults)
            let pe = planted.map(exact), pa = planted.map(approximate)
            let recallPlanted = recall(pa, pe)
            let plantedHits = Double(zip(pe, plantedRows).filter { $0.0.first?.row == $0.1 }.count) / Double(Q)
            let row = Row(rows: n, exactMilliseconds: timing(te), exactGBps: Double(n * R * 4) / percentile(te, 0.5) / 1e9,
                          int8Milliseconds: timing(ta), int8RecallRandom: recallRandom, int8RecallPlanted: recallPlanted,
                          plantedExactHits: plantedHits)
            out.append(row)
            say(String(format: "  %8d rows  exact f32: p50 %.2f ms p95 %.2f p99 %.2f (%.1f GB/s) | int8+rescore: p50 %.2f ms p95 %.2f p99 %.2f, "
                       + "recall@%d %.3f random / %.3f planted (index build %.1f s)",
                       n, row.exactMilliseconds.median, row.exactMilliseconds.p95, row.exactMilliseconds.p99, row.exactGBps,
                       row.int8Milliseconds.median, row.int8Milliseconds.p95, row.int8Milliseconds.p99, k, recallRandom, recallPlanted, build))
        }
        if json {
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys]
            print(String(decoding: try e.encode(out), as: UTF8.self))
        }
        return .ok
    }

    static func timing(_ seconds: [Double]) -> Timing {
        Timing(median: percentile(seconds, 0.5) * 1000, p95: percentile(seconds, 0.95) * 1000, p99: percentile(seconds, 0.99) * 1000)
    }

    /// Nearest-rank percentile.
    static func percentile(_ xs: [Double], _ p: Double) -> Double {
        let s = xs.sorted()
        guard !s.isEmpty else { return 0 }
        return s[min(s.count - 1, max(0, Int((p * Double(s.count)).rounded(.up)) - 1))]
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// xorshift64* for benchmark data.
struct BenchRandom {
    var x: UInt64
    init(seed: UInt64) { x = seed == 0 ? 0x2545_F491_4F6C_DD1D : seed }
    mutating func nextInt() -> UInt64 {
        x ^= x >> 12; x ^= x << 25; x ^= x >> 27
        return x &* 0x2545_F491_4F6C_DD1D
    }
    /// Uniform in [-1, 1).
    mutating func next() -> Float { Float(nextInt() >> 40) / Float(1 << 23) - 1 }
}
