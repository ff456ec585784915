// Two-stage top-k retrieval for large key matrices. Stage 1 scans the int8 copy of the
// keys (`QuantizedKeys`, a quarter of the f32 bytes) with the query quantized to int8 too,
// products accumulated in Int32, and keeps the best `candidates` rows by approximate
// score; stage 2 rescores those rows exactly from the f32 keys with the same `dot` as the
// exact scan, so every returned score is exact and the result equals `topK` whenever the
// exact top k are among the candidates (always, when candidates >= rows searched).
// The reference is the exact `topK` / `topKNaive`; `recipe bench retrieval` reports the
// recall of this path against it.
//
// Kernel: key codes Int8 x query codes widened once per query to Int16, summed in Int32.
// Written as a plain loop so LLVM vectorizes it; on Zen 4 (-target-cpu native) this is
// vpmovsxbw + vpmaddwd + vpaddd per 16 bytes of a code row. LLVM forms vpdpbusd from Swift
// only for a whole 16-byte u8 x s8 reduction (a horizontal sum per 16 bytes), which
// measured no faster; Swift's SIMD integer conversions compile to per-lane code.
import Parallelism

extension KeySearch {
    /// Code rows per stage-1 block in a batched search: 2,048 rows of R = 256 are 512 KiB,
    /// which stay in L2 while every query of the batch scans them.
    static let codeBlockRows = 2048

    /// Two-stage `topK` for one query.
    ///   keys: [rowCount, R] f32    codes: the int8 copy of `keys`    query: [R]
    public static func topK(keys: UnsafePointer<Float>, codes: QuantizedKeys.View, rows: Range<Int>,
                            live: UnsafeBufferPointer<Bool>?, query: UnsafePointer<Float>,
                            k: Int, candidates: Int, scale: Float = 1) -> [SearchHit] {
        topK(keys: keys, codes: codes, rows: rows, live: live, queries: query, count: 1, k: k,
             candidates: candidates, scale: scale).first ?? []
    }

    /// Two-stage `topK` for Q queries in one pass over the codes (blocks of
    /// `codeBlockRows` rows stay in cache while every query scans them). Each result equals
    /// a one-query call. The best `max(k, candidates)` rows of `rows` by approximate score
    /// (live rows only) are rescored exactly; the top `k` of those return, best first, ties
    /// by lower row. R is `codes.dimension`. Falls back to the exact scan when `codes` or
    /// `live` does not cover `rows`.
    ///   keys: [rowCount, R]      codes: [codes.count, stride]      queries: [Q, R]
    public static func topK(keys: UnsafePointer<Float>, codes: QuantizedKeys.View, rows: Range<Int>,
                            live: UnsafeBufferPointer<Bool>?, queries: UnsafePointer<Float>, count Q: Int,
                            k: Int, candidates: Int, scale: Float = 1) -> [[SearchHit]] {
        guard Q > 0 else { return [] }
        guard k > 0, !rows.isEmpty, rows.lowerBound >= 0 else { return [[SearchHit]](repeating: [], count: Q) }
        let R = codes.dimension, S = codes.stride
        guard rows.upperBound <= codes.count, live.map({ $0.count >= rows.upperBound }) ?? true else {
            return topK(keys: keys, dimension: R, rows: rows, live: live, queries: queries, count: Q, k: k, scale: scale)
        }
        let C = max(k, candidates)
        // Stage 0: the queries quantized like the keys, widened to Int16 for the kernel and
        // padded with zeros to the code stride. factor[q] turns an Int32 dot into a score
        // before the row's own scale: query scale x the caller's scale.
        let qcodes = UnsafeMutablePointer<Int16>.allocate(capacity: Q * S)
        qcodes.initialize(repeating: 0, count: Q * S)
        let q8 = UnsafeMutablePointer<Int8>.allocate(capacity: R)
        defer { qcodes.deallocate(); q8.deallocate() }
        var factor = [Float](repeating: 0, count: Q)
        for q in 0..<Q {
            factor[q] = QuantizedKeys.quantize(queries + q * R, R, into: q8) * scale
            for i in 0..<R { qcodes[q * S + i] = Int16(q8[i]) }
        }

        // Stage 1, rows split across the worker threads; each part keeps its best C per query.
        let split = Self.split(rowCount: rows.count)
        let parts = split.parts
        let results = UnsafeMutableBufferPointer<[[SearchHit]]>.allocate(capacity: parts)
        results.initialize(repeating: [])
        defer { results.deinitialize(); results.deallocate() }
        parallelFor(parts) { p in
            let part = split[p].shifted(by: rows.lowerBound)
            let lo = part.lowerBound, hi = part.upperBound
            var best = [[SearchHit]](repeating: [], count: Q)
            for q in 0..<Q { best[q].reserveCapacity(min(C, max(0, hi - lo))) }
            var floor = [Float](repeating: -.infinity, count: Q)
            var b = lo
            while b < hi {
                // A block never crosses a chunk, so its code rows are contiguous.
                let e = min(hi, b + codeBlockRows, (b / QuantizedKeys.chunkRows + 1) * QuantizedKeys.chunkRows)
                for q in 0..<Q {
                    scanCodes(codes, b..<e, live, qcodes + q * S, factor[q], C, &best[q], &floor[q])
                }
                b = e
            }
            results[p] = best
        }

        // Stage 2: the best C over all parts, rescored exactly (the exact scan's arithmetic).
        return (0..<Q).map { q in
            let query = queries + q * R
            let pool = (0..<parts).flatMap { results[$0].isEmpty ? [] : results[$0][q] }.sorted(by: better).prefix(C)
            let exact = pool.map { SearchHit(row: $0.row, score: dot(keys + $0.row * R, query, R) * scale) }
            return Array(exact.sorted(by: better).prefix(k))
        }
    }

    /// `sum(codes[i] * query[i])` over `n` entries (a multiple of 32 by construction, but
    /// any n works), accumulated in Int32: |sum| <= n * 127 * 127, no overflow below n = 133,000.
    @inline(__always)
    public static func dotInt8(_ codes: UnsafePointer<Int8>, _ query: UnsafePointer<Int16>, _ n: Int) -> Int32 {
        var s: Int32 = 0
        for i in 0..<n { s &+= Int32(codes[i]) &* Int32(query[i]) }
        return s
    }

    /// The scalar twin of `dotInt8`, in Int (no overflow possible), for the tests.
    public static func dotInt8Naive(_ codes: [Int8], _ query: [Int16]) -> Int {
        zip(codes, query).reduce(0) { $0 + Int($1.0) * Int($1.1) }
    }

    /// Stage 1 over `rows` (within one chunk): keeps the best C rows by approximate score
    /// in `heap` (worst at the root, so C may be large) and their `floor` once full.
    @inline(__always)
    private static func scanCodes(_ codes: QuantizedKeys.View, _ rows: Range<Int>, _ live: UnsafeBufferPointer<Bool>?,
                                  _ query: UnsafePointer<Int16>, _ factor: Float, _ C: Int,
                                  _ heap: inout [SearchHit], _ floor: inout Float) {
        let S = codes.stride, lo = rows.lowerBound
        let first = codes.codes(row: lo), scales = codes.scales(row: lo)
        for r in rows {
            if let live, !live[r] { continue }
            let s = Float(dotInt8(first + (r - lo) * S, query, S)) * (scales[r - lo] * factor)
            // Rows arrive in increasing order, so an equal score never beats a kept row.
            if heap.count == C && !(s > floor) { continue }
            push(SearchHit(row: r, score: s), into: &heap, limit: C)
            if heap.count == C { floor = heap[0].score }
        }
    }

    /// Adds `hit` to `heap`, a binary heap of at most `C` hits whose root is the worst by
    /// `better`, dropping the worst when full.
    @inline(__always)
    static func push(_ hit: SearchHit, into heap: inout [SearchHit], limit C: Int) {
        if heap.count < C {
            heap.append(hit)
            var i = heap.count - 1
            while i > 0 {
                let parent = (i - 1) / 2
                guard better(heap[parent], heap[i]) else { break }
                heap.swapAt(parent, i)
                i = parent
            }
        } else if better(hit, heap[0]) {
            heap[0] = hit
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var worst = i
                if l < heap.count && better(heap[worst], heap[l]) { worst = l }
                if r < heap.count && better(heap[worst], heap[r]) { worst = r }
                if worst == i { break }
                heap.swapAt(i, worst)
                i = worst
            }
        }
    }
}
