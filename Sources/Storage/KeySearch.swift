// Exact top-k retrieval by dot product over a key matrix, the scan behind every query.
// Memory bound (a 10^6 x 256 f32 matrix is 1 GB per query), so the kernel is the SIMD
// `dot` of Parallelism with the rows split across `Threads.count` threads (`split`);
// `topKNaive` is the scalar twin the tests compare against.
import Parallelism

public struct SearchHit: Sendable, Equatable {
    public let row: Int
    public let score: Float
    public init(row: Int, score: Float) { self.row = row; self.score = score }
}

public enum KeySearch {
    /// Rows per worker below which the scan runs on the calling thread.
    public static let parallelThreshold = 16_384

    /// How a scan of `rowCount` rows is cut across `Threads.count` threads: parts of at
    /// least `parallelThreshold` rows (one part below twice that).
    public static func split(rowCount: Int) -> WorkSplit { WorkSplit(rowCount, minimum: parallelThreshold) }

    /// The best `k` rows of `rows` by `scale * dot(keys[row], query)`, best first, ties by
    /// lower row; rows with `live[row] == false` are skipped.
    ///   keys:  [rowCount, R] row-major      query: [R]      live: [rowCount] or nil (all live)
    public static func topK(keys: UnsafePointer<Float>, dimension R: Int, rows: Range<Int>,
                            live: UnsafeBufferPointer<Bool>?, query: UnsafePointer<Float>,
                            k: Int, scale: Float = 1) -> [SearchHit] {
        guard k > 0, !rows.isEmpty else { return [] }
        let split = Self.split(rowCount: rows.count)
        if split.parts == 1 { return scan(keys, R, rows, live, query, k, scale) }
        let results = UnsafeMutableBufferPointer<[SearchHit]>.allocate(capacity: split.parts)
        results.initialize(repeating: [])
        defer { results.deinitialize(); results.deallocate() }
        parallelFor(split.parts) { p in
            let part = split[p]
            if !part.isEmpty { results[p] = scan(keys, R, part.shifted(by: rows.lowerBound), live, query, k, scale) }
        }
        return Array(results.joined().sorted(by: better).prefix(k))
    }

    /// `topK` for Q queries at once: the rows are scanned in blocks that stay in cache
    /// while every query is scored against them, so a batch costs about one pass over the
    /// matrix instead of Q (the scan is memory bound). Results equal Q calls of `topK`.
    ///   keys: [rowCount, R]      queries: [Q, R]      returns Q lists, best first
    public static func topK(keys: UnsafePointer<Float>, dimension R: Int, rows: Range<Int>,
                            live: UnsafeBufferPointer<Bool>?, queries: UnsafePointer<Float>, count Q: Int,
                            k: Int, scale: Float = 1) -> [[SearchHit]] {
        guard Q > 0 else { return [] }
        guard k > 0, !rows.isEmpty else { return [[SearchHit]](repeating: [], count: Q) }
        let split = Self.split(rowCount: rows.count)
        let parts = split.parts
        let results = UnsafeMutableBufferPointer<[[SearchHit]]>.allocate(capacity: parts)
        results.initialize(repeating: [])
        defer { results.deinitialize(); results.deallocate() }
        parallelFor(parts) { p in
            let part = split[p].shifted(by: rows.lowerBound)
            let lo = part.lowerBound, hi = part.upperBound
            guard lo < hi else { results[p] = [[SearchHit]](repeating: [], count: Q); return }
            var best = [[SearchHit]](repeating: [], count: Q)
            // Blocks of about 1 MB of keys stay in L2 while every query scans them with the
            // single-query kernel; the per-block lists are merged (k is small).
            let block = max(1, (1 << 20) / (R * 4))
            var b = lo
            while b < hi {
                let e = min(hi, b + block)
                for q in 0..<Q {
                    let part = scan(keys, R, b..<e, live, queries + q * R, k, scale)
                    if best[q].isEmpty { best[q] = part } else { for h in part { insert(h, into: &best[q], k: k) } }
                }
                b = e
            }
            results[p] = best
        }
        return (0..<Q).map { q in Array((0..<parts).flatMap { results[$0][q] }.sorted(by: better).prefix(k)) }
    }

    /// The scalar reference for `topK`.
    public static func topKNaive(keys: UnsafePointer<Float>, dimension R: Int, rows: Range<Int>,
                                 live: UnsafeBufferPointer<Bool>?, query: UnsafePointer<Float>,
                                 k: Int, scale: Float = 1) -> [SearchHit] {
        var all: [SearchHit] = []
        for r in rows where live?[r] ?? true {
            all.append(SearchHit(row: r, score: dotNaive(keys + r * R, query, R) * scale))
        }
        return Array(all.sorted(by: better).prefix(k))
    }

    @inline(__always)
    static func better(_ a: SearchHit, _ b: SearchHit) -> Bool {
        a.score > b.score || (a.score == b.score && a.row < b.row)
    }

    /// Inserts `hit` into `list` (sorted best first) and keeps at most `k`.
    @inline(__always)
    static func insert(_ hit: SearchHit, into list: inout [SearchHit], k: Int) {
        var at = list.count
        while at > 0 && better(hit, list[at - 1]) { at -= 1 }
        list.insert(hit, at: at)
        if list.count > k { list.removeLast() }
    }

    private static func scan(_ keys: UnsafePointer<Float>, _ R: Int, _ rows: Range<Int>,
                             _ live: UnsafeBufferPointer<Bool>?, _ query: UnsafePointer<Float>,
                             _ k: Int, _ scale: Float) -> [SearchHit] {
        // `best` is kept sorted, best first; `floor` is its worst score once full.
        var best: [SearchHit] = []
        best.reserveCapacity(k + 1)
        var floor = -Float.infinity
        for r in rows {
            if let live, !live[r] { continue }
            let s = dot(keys + r * R, query, R) * scale
            if best.count == k && !(s > floor) { continue }
            let hit = SearchHit(row: r, score: s)
            var at = best.count
            while at > 0 && better(hit, best[at - 1]) { at -= 1 }
            best.insert(hit, at: at)
            if best.count > k { best.removeLast() }
            if best.count == k { floor = best[k - 1].score }
        }
        return best
    }
}

extension Range<Int> {
    /// The range moved up by `offset` (a part of `0..<n` placed inside `rows`).
    @inline(__always)
    func shifted(by offset: Int) -> Range<Int> { (lowerBound + offset)..<(upperBound + offset) }
}
