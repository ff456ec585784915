// `recipe bench retrieval`: single-query top-k latency over a key matrix [rows, R] at
// several sizes, for the two search paths of Storage: the exact f32 scan
// (`KeySearch.topK`) and the two-stage search over the int8 copy (`QuantizedKeys`,
// candidates rescored exactly; what the repository serves with from
// `RepositoryOptions.twoStageSearchRows` rows). Each size first checks the exact scan
// against the naive reference, times building the int8 copy (what an open costs on top of
// mapping the keys), warms up, then reports p50/p95/p99 of both paths and the recall of
// two-stage search against exact search at 1 and at `--recall-k`, for random queries (the
// hardest case: near-ties everywhere) and "planted" ones (a stored key plus noise, what a
// query for a stored fact looks like).
import Foundation
import Glibc
import Parallelism
import Storage

enum BenchRetrieval {
    static let valued: Set<String> = ["rows", "queries", "dimension", "k", "candidates", "recall-k", "batch"]
    static let help = """
        usage: recipe bench retrieval [--rows 10000,100000,1000000] [--queries N] [--dimension R]
                                      [--k K] [--candidates C] [--recall-k K2] [--batch B] [--json]
          --rows LIST      key matrix sizes (default 10000,100000,1000000)
          --queries N      timed queries per size and method (default 200)
          --dimension R    key width (default 256, RECIPE's R)
          --k K            results per timed query (default 1)
          --candidates C   two-stage: rows rescored exactly per query (default 64, as the repository)
          --recall-k K2    recall is also measured at K2 results, untimed (default 10)
          --batch B        also time two-stage search of B queries per call (default 8; 1: off)
        """

    struct Timing: Codable { var median: Double; var p95: Double; var p99: Double }
    struct Recall: Codable { var at1: Double; var atK: Double }
    struct Row: Codable {
        var rows: Int
        var load: String
        var exactMilliseconds: Timing
        var exactGBps: Double
        var twoStageMilliseconds: Timing
        var int8GBps: Double
        var int8BuildSeconds: Double
        /// Two-stage search of `batch` queries in one call (nil when --batch 1).
        var batch: Int
        var batchMilliseconds: Timing?
        var recallRandom: Recall
        var recallPlanted: Recall
        var plantedExactHits: Double
    }

    static func run(_ args: inout Arguments, json: Bool) throws -> ExitCode {
        let sizes = try BenchCommand.list(args.string("rows") ?? "10000,100000,1000000", "rows")
        let Q = try args.int("queries", default: 200)
        let R = try args.int("dimension", default: 256)
        let k = try args.int("k", default: 1)
        let C = try args.int("candidates", default: 64)
        let K2 = try args.int("recall-k", default: 10)
        let B = try args.int("batch", default: 8)
        try args.rejectUnknown()
        guard Q >= 1, R >= 1, R <= 8192, k >= 1, K2 >= 1, C >= max(k, K2), B >= 1, B <= Q else {
            throw UsageError("need --queries ≥ 1, 1 ≤ --dimension ≤ 8192, --k ≥ 1, --recall-k ≥ 1, --candidates ≥ both k, 1 ≤ --batch ≤ --queries")
        }
        func say(_ s: String) { if !json { print(s) } }
        say("retrieval: R \(R), k \(k), \(Q) queries per size, \(Threads.count) threads, two-stage candidates \(C); load \(BenchIngest.loadAverage())")
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

            func exact(_ q: [Float], _ k: Int) -> [SearchHit] {
                live.withUnsafeBufferPointer { l in q.withUnsafeBufferPointer {
                    KeySearch.topK(keys: base, dimension: R, rows: 0..<n, live: l, query: $0.baseAddress!, k: k)
                } }
            }
            // Reference check of the exact scan (the naive twin is slow: 3 queries).
            for q in random.prefix(3) {
                let naive = live.withUnsafeBufferPointer { l in q.withUnsafeBufferPointer {
                    KeySearch.topKNaive(keys: base, dimension: R, rows: 0..<n, live: l, query: $0.baseAddress!, k: k)
                } }
                guard exact(q, k).map(\.row) == naive.map(\.row) else {
                    IngestOutput.note("recipe bench retrieval: exact scan differs from the naive reference at \(n) rows; not timing it")
                    return .failure
                }
            }
            let t0 = now()
            let codes = QuantizedKeys(keys: base, rows: n, dimension: R).view
            let build = now() - t0
            func twoStage(_ q: [Float], _ k: Int) -> [SearchHit] {
                live.withUnsafeBufferPointer { l in q.withUnsafeBufferPointer {
                    KeySearch.topK(keys: base, codes: codes, rows: 0..<n, live: l, query: $0.baseAddress!, k: k, candidates: C)
                } }
            }
            _ = exact(random[0], k); _ = twoStage(random[0], k)  // warm-up
            var te: [Double] = [], ta: [Double] = []
            for q in random {
                var t = now(); _ = exact(q, k); te.append(now() - t)
                t = now(); _ = twoStage(q, k); ta.append(now() - t)
            }
            // Batches of B queries in one pass (each result equals a one-query call; tested).
            var tb: [Double] = []
            if B > 1 {
                let flat = random.flatMap { $0 }
                for first in stride(from: 0, through: Q - B, by: B) {
                    let t = now()
                    _ = live.withUnsafeBufferPointer { l in flat.withUnsafeBufferPointer {
                        KeySearch.topK(keys: base, codes: codes, rows: 0..<n, live: l, queries: $0.baseAddress! + first * R, count: B,
                                       k: k, candidates: C)
                    } }
                    tb.append(now() - t)
                }
            }
            let load = BenchIngest.loadAverage()
            // Recall, untimed, at K2 results: @1 is the top row, @K2 the overlap of the sets.
            func recall(_ queries: [[Float]]) -> Recall {
                var top = 0, overlap = 0, total = 0
                for q in queries {
                    let e = exact(q, K2), a = twoStage(q, K2)
                    if e.first?.row == a.first?.row { top += 1 }
                    overlap += Set(e.map(\.row)).intersection(a.map(\.row)).count
                    total += e.count
                }
                return Recall(at1: Double(top) / Double(queries.count), atK: Double(overlap) / Double(max(1, total)))
            }
            let recallRandom = recall(random), recallPlanted = recall(planted)
            let plantedHits = Double(zip(planted, plantedRows).filter { exact($0.0, 1).first?.row == $0.1 }.count) / Double(Q)
            let row = Row(rows: n, load: load, exactMilliseconds: timing(te), exactGBps: Double(n * R * 4) / percentile(te, 0.5) / 1e9,
                          twoStageMilliseconds: timing(ta), int8GBps: Double(n * codes.stride) / percentile(ta, 0.5) / 1e9,
                          int8BuildSeconds: build, batch: B, batchMilliseconds: tb.isEmpty ? nil : timing(tb), recallRandom: recallRandom, recallPlanted: recallPlanted,
                          plantedExactHits: plantedHits)
            out.append(row)
            say(String(format: "  %8d rows  exact f32: p50 %.2f ms p95 %.2f p99 %.2f (%.1f GB/s) | two-stage: p50 %.2f ms p95 %.2f p99 %.2f "
                       + "(%.1f GB/s of codes) | recall@1 %.3f / @%d %.3f random, @1 %.3f / @%d %.3f planted | int8 build %.3f s",
                       n, row.exactMilliseconds.median, row.exactMilliseconds.p95, row.exactMilliseconds.p99, row.exactGBps,
                       row.twoStageMilliseconds.median, row.twoStageMilliseconds.p95, row.twoStageMilliseconds.p99, row.int8GBps,
                       recallRandom.at1, K2, recallRandom.atK, recallPlanted.at1, K2, recallPlanted.atK, build)
                + (row.batchMilliseconds.map { String(format: " | batch of %d: p50 %.2f ms p99 %.2f per call", B, $0.median, $0.p99) } ?? "")
                + " | load \(load)")
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
