// Two-stage retrieval (int8 candidates, exact rescoring) against the exact scan: equality
// when the candidates cover the rows, recall on planted queries, exact scores and the
// sentinel rule in the repository, the int8 copy kept consistent through commits,
// retraction, supersession, compaction and reopening, and hostile or degenerate inputs.
import Parallelism
import Storage
import Testing
import TestSupport

/// Uniform values in [-1, 1] with 3 decimals, seeded.
private func values(_ n: Int, _ rng: inout SeededRandom) -> [Float] {
    (0..<n).map { _ in Float(Int(rng.next() % 2001) - 1000) / 1000 }
}

/// The documented quantization, written independently: scale = max |x| / 127 over the
/// finite values, code = round-half-even(x * (127 / max)), non-finite values code 0.
private func referenceCodes(_ x: [Float]) -> (codes: [Int8], scale: Float) {
    let m = x.filter(\.isFinite).map(abs).max() ?? 0
    guard m > 0 else { return ([Int8](repeating: 0, count: x.count), 0) }
    return (x.map { $0.isFinite ? Int8(max(-127, min(127, ($0 * (127 / m)).rounded(.toNearestOrEven)))) : 0 }, m / 127)
}

private func exactTopK(_ keys: [Float], _ R: Int, _ rows: Range<Int>, _ live: [Bool]?, _ query: [Float], _ k: Int,
                       _ scale: Float = 1) -> [SearchHit] {
    keys.withUnsafeBufferPointer { kp in query.withUnsafeBufferPointer { qp in
        if let live {
            return live.withUnsafeBufferPointer { lp in
                KeySearch.topK(keys: kp.baseAddress!, dimension: R, rows: rows, live: lp, query: qp.baseAddress!, k: k, scale: scale)
            }
        }
        return KeySearch.topK(keys: kp.baseAddress!, dimension: R, rows: rows, live: nil, query: qp.baseAddress!, k: k, scale: scale)
    } }
}

private func twoStageTopK(_ keys: [Float], _ codes: QuantizedKeys.View, _ rows: Range<Int>, _ live: [Bool]?, _ query: [Float],
                          _ k: Int, candidates: Int, _ scale: Float = 1) -> [SearchHit] {
    keys.withUnsafeBufferPointer { kp in query.withUnsafeBufferPointer { qp in
        if let live {
            return live.withUnsafeBufferPointer { lp in
                KeySearch.topK(keys: kp.baseAddress!, codes: codes, rows: rows, live: lp, query: qp.baseAddress!, k: k,
                               candidates: candidates, scale: scale)
            }
        }
        return KeySearch.topK(keys: kp.baseAddress!, codes: codes, rows: rows, live: nil, query: qp.baseAddress!, k: k,
                              candidates: candidates, scale: scale)
    } }
}

@Suite struct TwoStageSearchTests {
    @Test func int8KernelMatchesItsScalarTwin() {
        var rng = SeededRandom(seed: 5)
        for n in [0, 1, 31, 32, 33, 256, 1000, 4096] {
            // One spare entry each, so that n = 0 still has a buffer to point at.
            let codes = (0...n).map { _ in Int8(Int(rng.next() % 255) - 127) }
            let query = (0...n).map { _ in Int16(Int(rng.next() % 255) - 127) }
            let fast = codes.withUnsafeBufferPointer { c in query.withUnsafeBufferPointer { KeySearch.dotInt8(c.baseAddress!, $0.baseAddress!, n) } }
            #expect(Int(fast) == KeySearch.dotInt8Naive(Array(codes.prefix(n)), Array(query.prefix(n))), "n \(n)")
            // The extreme products, where a 16-bit accumulation would overflow.
            let high = [Int8](repeating: -127, count: n + 1), low = [Int16](repeating: -127, count: n + 1)
            let extreme = high.withUnsafeBufferPointer { c in low.withUnsafeBufferPointer { KeySearch.dotInt8(c.baseAddress!, $0.baseAddress!, n) } }
            #expect(Int(extreme) == n * 127 * 127)
        }
    }

    @Test(arguments: [1, 7, 33, 256])
    func quantizationFollowsTheDocumentedRule(dimension R: Int) {
        var rng = SeededRandom(seed: UInt64(R))
        var keys = values(5 * R, &rng)
        for i in 0..<R { keys[2 * R + i] = 0 }                   // an all-zero row
        keys[3 * R] = .nan; keys[4 * R] = -.infinity            // hostile values
        let q = QuantizedKeys(keys: keys, rows: 5, dimension: R)
        #expect(q.stride % 32 == 0 && q.stride >= R)
        let view = q.view
        for row in 0..<5 {
            let (codes, scale) = referenceCodes(Array(keys[row * R..<(row + 1) * R]))
            #expect(view.codeRow(row) == codes, "row \(row)")
            #expect(view.rowScale(row) == scale, "row \(row)")
        }
        #expect(view.rowScale(5) == nil)
        #expect(view.codeRow(-1).isEmpty)
    }

    @Test(arguments: [(1, 1), (5, 7), (300, 33), (3000, 256), (70_000, 40)])
    func equalsExactSearchWhenCandidatesCoverTheRows(rows: Int, dimension R: Int) {
        var rng = SeededRandom(seed: UInt64(rows * 7 + R))
        let keys = values(rows * R, &rng)
        let live = (0..<rows).map { _ in rng.next() % 5 != 0 }
        let codes = QuantizedKeys(keys: keys, rows: rows, dimension: R).view
        for (k, scale) in [(1, Float(1)), (3, 0.5), (10, -2)] {
            for _ in 0..<3 {
                let query = values(R, &rng)
                let exact = exactTopK(keys, R, 0..<rows, live, query, k, scale)
                let approx = twoStageTopK(keys, codes, 0..<rows, live, query, k, candidates: rows, scale)
                #expect(approx == exact, "rows \(rows) R \(R) k \(k) scale \(scale)")  // rows and exact scores
            }
        }
    }

    @Test func plantedKeysAreRecalledAndScoresAreExact() {
        // Past 2 x parallelThreshold rows, so stage 1 runs split across threads.
        let rows = 50_000, R = 256
        var rng = SeededRandom(seed: 11)
        let keys = values(rows * R, &rng)
        let codes = QuantizedKeys(keys: keys, rows: rows, dimension: R).view
        var top1 = 0, overlap = 0
        let Q = 60
        for _ in 0..<Q {
            let planted = Int(rng.next() % UInt64(rows))
            let query = (0..<R).map { keys[planted * R + $0] + 0.5 * Float(Int(rng.next() % 2001) - 1000) / 1000 }
            let exact = exactTopK(keys, R, 0..<rows, nil, query, 10)
            let approx = twoStageTopK(keys, codes, 0..<rows, nil, query, 10, candidates: 64)
            if approx.first == exact.first { top1 += 1 }
            overlap += Set(approx.map(\.row)).intersection(exact.map(\.row)).count
            // Every score returned is the exact one for its row.
            for h in approx {
                let s = keys.withUnsafeBufferPointer { kp in query.withUnsafeBufferPointer { dot(kp.baseAddress! + h.row * R, $0.baseAddress!, R) } }
                #expect(h.score == s)
            }
            #expect(exact.first?.row == planted)
        }
        #expect(top1 == Q, "recall@1 \(top1)/\(Q)")
        #expect(Double(overlap) / Double(10 * Q) >= 0.95, "recall@10 \(Double(overlap) / Double(10 * Q))")
    }

    @Test func batchEqualsOneQueryAtATime() {
        let rows = 40_000, R = 48, Q = 5
        var rng = SeededRandom(seed: 3)
        let keys = values(rows * R, &rng), qs = values(Q * R, &rng)
        let live = (0..<rows).map { _ in rng.next() % 4 != 0 }
        let codes = QuantizedKeys(keys: keys, rows: rows, dimension: R).view
        let batch = keys.withUnsafeBufferPointer { kp in live.withUnsafeBufferPointer { lp in qs.withUnsafeBufferPointer { qp in
            KeySearch.topK(keys: kp.baseAddress!, codes: codes, rows: 1..<rows, live: lp, queries: qp.baseAddress!, count: Q,
                           k: 4, candidates: 16, scale: 2)
        } } }
        #expect(batch.count == Q)
        for q in 0..<Q {
            #expect(batch[q] == twoStageTopK(keys, codes, 1..<rows, live, Array(qs[q * R..<(q + 1) * R]), 4, candidates: 16, 2))
        }
    }

    @Test func appendsAcrossChunksKeepOlderViewsValid() {
        let R = 3, rows = QuantizedKeys.chunkRows + 100
        var rng = SeededRandom(seed: 8)
        let keys = values(rows * R, &rng)
        let whole = QuantizedKeys(keys: keys, rows: rows, dimension: R).view
        let grown = QuantizedKeys(dimension: R)
        var views: [QuantizedKeys.View] = []
        var at = 0
        for n in [QuantizedKeys.chunkRows - 5, 1, 4, 60, 40] {
            keys.withUnsafeBufferPointer { grown.append($0.baseAddress! + at * R, rows: n) }
            at += n
            views.append(grown.view)
        }
        #expect(at == rows)
        for v in views {
            for row in [0, 1, QuantizedKeys.chunkRows - 6, QuantizedKeys.chunkRows - 1, QuantizedKeys.chunkRows, v.count - 1]
            where row < v.count {
                #expect(v.codeRow(row) == whole.codeRow(row) && v.rowScale(row) == whole.rowScale(row), "row \(row) of \(v.count)")
            }
            #expect(v.codeRow(v.count).isEmpty)
        }
    }

    @Test func degenerateAndHostileInputsNeverCrash() {
        let R = 7
        var rng = SeededRandom(seed: 9)
        var keys = values(50 * R, &rng)
        keys[3 * R + 2] = .nan
        keys[8 * R] = .infinity
        let codes = QuantizedKeys(keys: keys, rows: 50, dimension: R).view
        let query = values(R, &rng)
        // 0 rows, k = 0, 0 candidates (treated as k), no queries.
        #expect(twoStageTopK(keys, codes, 0..<0, nil, query, 3, candidates: 10).isEmpty)
        #expect(twoStageTopK(keys, codes, 0..<50, nil, query, 0, candidates: 10).isEmpty)
        #expect(twoStageTopK(keys, codes, 0..<50, nil, query, 2, candidates: 0).count == 2)
        let none = keys.withUnsafeBufferPointer { kp in query.withUnsafeBufferPointer {
            KeySearch.topK(keys: kp.baseAddress!, codes: codes, rows: 0..<50, live: nil, queries: $0.baseAddress!, count: 0,
                           k: 1, candidates: 4)
        } }
        #expect(none.isEmpty)
        // An empty copy, or one (or a live mask) shorter than the rows: the exact scan answers.
        let empty = QuantizedKeys(dimension: R).view
        #expect(twoStageTopK(keys, empty, 0..<50, nil, query, 3, candidates: 4) == exactTopK(keys, 7, 0..<50, nil, query, 3))
        let short = QuantizedKeys(keys: keys, rows: 20, dimension: R).view
        #expect(twoStageTopK(keys, short, 0..<50, nil, query, 3, candidates: 4) == exactTopK(keys, 7, 0..<50, nil, query, 3))
        let liveShort = [Bool](repeating: true, count: 10)
        #expect(twoStageTopK(keys, codes, 0..<50, liveShort, query, 3, candidates: 4) == exactTopK(keys, 7, 0..<50, liveShort, query, 3))
        // Non-finite queries and an all-zero query: answers of the right size, no trap.
        for bad: Float in [.nan, .infinity, -.infinity] {
            var q = query
            q[1] = bad
            #expect(twoStageTopK(keys, codes, 0..<50, nil, q, 3, candidates: 4).count == 3)
        }
        #expect(twoStageTopK(keys, codes, 0..<50, nil, [Float](repeating: 0, count: R), 3, candidates: 4).count == 3)
        // Hostile key rows still return their exact (non-finite) scores when rescored.
        let all = twoStageTopK(keys, codes, 0..<50, nil, query, 50, candidates: 50)
        #expect(all.count == 50)
        #expect(Set(all.map(\.row)) == Set(0..<50))
    }
}

@Suite struct TwoStageRepositoryTests {
    private func options(candidates: Int) -> RepositoryOptions {
        var o = RepositoryOptions()
        o.twoStageSearchRows = 1
        o.twoStageCandidates = candidates
        return o
    }

    /// The snapshot's int8 copy covers its rows and equals the quantization of its keys.
    private func expectCodesMatchKeys(_ s: RepositorySnapshot, _ what: String) {
        guard let codes = s.quantizedKeys else { Issue.record("\(what): no int8 copy"); return }
        #expect(codes.count >= s.rowCount, "\(what)")
        var bad = 0
        for row in 0..<s.rowCount {
            let (c, scale) = referenceCodes(s.key(row: row))
            if codes.codeRow(row) != c || codes.rowScale(row) != scale { bad += 1 }
        }
        #expect(bad == 0, "\(what): \(bad) of \(s.rowCount) code rows differ from the keys")
    }

    /// Exact search over the snapshot's live rows, from its keys.
    private func exactSearch(_ s: RepositorySnapshot, _ query: [Float], k: Int, scale: Float) -> [SearchHit] {
        let R = s.keyDimension
        let keys = (0..<s.rowCount).flatMap { s.key(row: $0) }
        let live = (0..<s.rowCount).map { s.isLive(row: $0) }
        return exactTopK(keys, R, 1..<s.rowCount, live, query, k, scale)
    }

    @Test func twoStageSnapshotsAnswerLikeExactSearchWithExactSentinelRule() throws {
        let enc = HashingFactEncoder(keyDimension: 40)
        var exactOnly = RepositoryOptions()
        exactOnly.twoStageSearchRows = nil
        let wide = try Repository(path: try temporaryPath(), encoder: enc, options: options(candidates: 10_000))
        let exact = try Repository(path: try temporaryPath(), encoder: enc, options: exactOnly)
        let narrow = try Repository(path: try temporaryPath(), encoder: enc, options: options(candidates: 1))
        let statements = (0..<400).map { "Two stage fact \($0)" }
        for repo in [wide, exact, narrow] { _ = try repo.commit(statements.map { add($0) }) }
        #expect(wide.snapshot().searchesInTwoStages && narrow.snapshot().searchesInTwoStages)
        #expect(!exact.snapshot().searchesInTwoStages && exact.snapshot().quantizedKeys == nil)
        var rng = SeededRandom(seed: 21)
        let queries = statements.prefix(20).map { enc.key(for: $0) } + statements.prefix(20).map { enc.key(for: $0).map { -$0 } }
            + (0..<20).map { _ in values(40, &rng) }
        for q in queries {
            let a = try wide.snapshot().search(q, k: 3, scale: 0.5), b = try exact.snapshot().search(q, k: 3, scale: 0.5)
            #expect(a == b)
            // Few candidates: the hits may differ from exact search, their scores may not, and
            // the sentinel rule runs on them.
            let s = narrow.snapshot()
            let n = try s.search(q, k: 3, scale: 0.5)
            let R = s.keyDimension
            for h in n.candidates {
                let key = s.key(row: h.row)
                let score = key.withUnsafeBufferPointer { kp in q.withUnsafeBufferPointer { dot(kp.baseAddress!, $0.baseAddress!, R) } } * 0.5
                #expect(h.score == score)
            }
            #expect(n.sentinelScore == b.sentinelScore)
            #expect(n.hits == n.candidates.filter { $0.score > n.sentinelScore })
        }
        // Stored facts are still found with one candidate.
        for st in statements.prefix(20) {
            #expect(try narrow.snapshot().search(enc.key(for: st), k: 1).hits.first?.fact.statement == st)
        }
        // Batched search equals one search per query on the two-stage path too.
        #expect(try narrow.snapshot().search(queries, k: 2) == (try queries.map { try narrow.snapshot().search($0, k: 2) }))
    }

    @Test func int8CopyStaysConsistentThroughCommitsRetractionSupersessionCompactionAndReopen() throws {
        let dir = try temporaryPath()
        let enc = HashingFactEncoder(keyDimension: 33)
        var repo = try Repository(path: dir, encoder: enc, options: options(candidates: 64))
        expectCodesMatchKeys(repo.snapshot(), "empty")
        #expect(try repo.snapshot().search(enc.key(for: "nothing"), k: 3).candidates.isEmpty)
        for step in 0..<3 {
            _ = try repo.commit((0..<100).map { fact("Subject \(step * 100 + $0) lives in", "City \($0)", subject: "S\(step * 100 + $0)") })
            expectCodesMatchKeys(repo.snapshot(), "after step \(step)")
        }
        _ = try repo.commit((0..<50).map { .retractStatement("Subject \($0 * 3) lives in City \($0 * 3 % 100)") })
        _ = try repo.commit((0..<30).map { fact("Subject \($0 * 5 + 1) lives in", "Elsewhere", subject: "S\($0 * 5 + 1)") })
        let old = repo.snapshot()
        expectCodesMatchKeys(old, "after retract and supersede")
        #expect(old.rowCount == 331)
        let probes = ["Subject 7 lives in City 7", "Subject 6 lives in City 6", "Subject 1 lives in Elsewhere",
                      "Subject 250 lives in City 50"].map { enc.key(for: $0) }
        let before = try probes.map { try old.search($0, k: 4, scale: 2) }
        for (q, r) in zip(probes, before) {
            #expect(r.candidates.map(\.row) == exactSearch(old, q, k: 4, scale: 2).map(\.row))
            #expect(r.candidates.allSatisfy { old.isLive(row: $0.row) })
        }
        #expect(before[1].hits.first?.fact.statement != "Subject 6 lives in City 6")   // retracted
        #expect(before[2].hits.first?.fact.statement == "Subject 1 lives in Elsewhere")  // superseding fact

        _ = try repo.compact()
        let compacted = repo.snapshot()
        expectCodesMatchKeys(compacted, "after compaction")
        expectCodesMatchKeys(old, "old snapshot after compaction")
        #expect(compacted.rowCount == old.liveCount + 1)
        let after = try probes.map { try compacted.search($0, k: 4, scale: 2) }
        #expect(after.map { $0.hits.map(\.fact) } == before.map { $0.hits.map(\.fact) })
        #expect(after.map { $0.hits.map(\.score) } == before.map { $0.hits.map(\.score) })
        #expect(try probes.map { try old.search($0, k: 4, scale: 2) } == before)

        _ = try repo.commit([add("After compaction")])
        expectCodesMatchKeys(repo.snapshot(), "commit after compaction")
        try repo.close()
        repo = try Repository(path: dir, encoder: enc, options: options(candidates: 64))  // adopts the files
        #expect(repo.openReport.rebuilt == nil)
        expectCodesMatchKeys(repo.snapshot(), "reopen")
        #expect(try retrieve(repo, enc, "After compaction") == FactText.derivedID("After compaction"))
        try repo.close()
        let other = HashingFactEncoder(keyDimension: 33, fingerprint: "hashing-v2")
        repo = try Repository(path: dir, encoder: other, options: options(candidates: 64))  // rebuilds
        #expect(repo.openReport.rebuilt != nil)
        expectCodesMatchKeys(repo.snapshot(), "rebuild")
        #expect(try retrieve(repo, other, "After compaction") == FactText.derivedID("After compaction"))
    }
}
