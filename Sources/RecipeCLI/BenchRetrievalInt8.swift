// An int8 copy of a key matrix for two-stage retrieval, as measured by `recipe bench
// retrieval`: stage 1 scans the int8 codes (a quarter of the f32 bytes; the exact scan is
// memory bound) for the best `candidates` rows by approximate score, stage 2 rescores
// those rows exactly from the f32 matrix and returns the top k with exact scores. The
// answer equals exact search whenever the true top k are among the candidates; the
// benchmark reports how often that holds (recall against exact search).
// A prototype here, in the benchmark, because Storage (which would keep the copy next to
// the mapped keys, updated per time step) is outside this branch.
//   keys: [N, R] f32 row-major  ->  codes: [N, R] int8, scales: [N] (row max |x| / 127)
import Dispatch
import Storage

final class Int8KeyIndex: @unchecked Sendable {
    let rows: Int
    let dimension: Int
    let codes: UnsafeMutablePointer<Int8>
    let scales: UnsafeMutablePointer<Float>

    /// Quantizes `keys` [rows, R] per row, symmetric: code = round(x / scale), scale = max|x| / 127.
    init(keys: UnsafePointer<Float>, rows: Int, dimension R: Int) {
        self.rows = rows
        dimension = R
        codes = .allocate(capacity: max(1, rows * R))
        scales = .allocate(capacity: max(1, rows))
        for r in 0..<rows {
            let row = keys + r * R
            var m: Float = 0
            for i in 0..<R { m = max(m, abs(row[i])) }
            let s = m > 0 ? m / 127 : 1
            scales[r] = s
            for i in 0..<R { codes[r * R + i] = Int8(max(-127, min(127, (row[i] / s).rounded()))) }
        }
    }

    deinit {
        codes.deallocate()
        scales.deallocate()
    }

    /// Approximate dot(codes[r] * scale[r], q) over R floats: int8 -> f32 in SIMD16 lanes.
    @inline(__always)
    func approximateDot(_ r: Int, _ q: UnsafePointer<Float>) -> Float {
        let R = dimension
        let c = UnsafeRawPointer(codes + r * R), qp = UnsafeRawPointer(q)
        var s0 = SIMD16<Float>(), s1 = SIMD16<Float>()
        var i = 0
        while i + 32 <= R {
            let a = SIMD16<Float>(c.loadUnaligned(fromByteOffset: i, as: SIMD16<Int8>.self))
            let b = SIMD16<Float>(c.loadUnaligned(fromByteOffset: i + 16, as: SIMD16<Int8>.self))
            s0 += a * qp.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            s1 += b * qp.loadUnaligned(fromByteOffset: i * 4 + 64, as: SIMD16<Float>.self)
            i += 32
        }
        var s = (s0 + s1).sum()
        while i < R { s += Float(codes[r * R + i]) * q[i]; i += 1 }
        return s * scales[r]
    }

    /// Two-stage top-k: best `candidates` rows of `range` by approximate score (live rows
    /// only), rescored exactly against `keys` [rows, R]. Rows split over `threads`.
    func topK(keys: UnsafePointer<Float>, live: UnsafeBufferPointer<Bool>?, range: Range<Int>, query: UnsafePointer<Float>,
              k: Int, candidates: Int, threads: Int) -> [SearchHit] {
        let C = max(k, candidates)
        let parts = range.count >= 32_768 ? max(1, threads) : 1
        let step = (range.count + parts - 1) / parts
        let results = UnsafeMutableBufferPointer<[SearchHit]>.allocate(capacity: parts)
        results.initialize(repeating: [])
        defer { results.deinitialize(); results.deallocate() }
        let box = UncheckedBox((keys, live, query, results))
        let work: @Sendable (Int) -> Void = { p in
            let (keys, live, query, results) = box.value
            let lo = range.lowerBound + p * step, hi = min(range.upperBound, lo + step)
            guard lo < hi else { return }
            // A bounded min-heap would do too; C is small, so a sorted array with a floor.
            var best: [SearchHit] = []
            best.reserveCapacity(C + 1)
            var floor = -Float.infinity
            for r in lo..<hi {
                if let live, !live[r] { continue }
                let s = self.approximateDot(r, query)
                if best.count == C && !(s > floor) { continue }
                let hit = SearchHit(row: r, score: s)
                var at = best.count
                while at > 0 && Self.better(hit, best[at - 1]) { at -= 1 }
                best.insert(hit, at: at)
                if best.count > C { best.removeLast() }
                if best.count == C { floor = best[C - 1].score }
            }
            // Stage 2: exact scores for this part's candidates.
            results[p] = best.map { SearchHit(row: $0.row, score: KeySearch.dot(keys + $0.row * self.dimension, query, self.dimension)) }
        }
        if parts == 1 { work(0) } else { DispatchQueue.concurrentPerform(iterations: parts, execute: work) }
        return Array(results.joined().sorted(by: Self.better).prefix(k))
    }

    @inline(__always)
    static func better(_ a: SearchHit, _ b: SearchHit) -> Bool {
        a.score > b.score || (a.score == b.score && a.row < b.row)
    }
}

/// A value shared read-only (or by disjoint slots) with concurrently run closures.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
