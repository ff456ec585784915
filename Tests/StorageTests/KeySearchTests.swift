// The retrieval kernel against its scalar twin, and the log checksum against the standard.
import Parallelism
import Posix
import Storage
import Testing
import TestSupport

@Suite struct KeySearchTests {
    @Test(arguments: [(1, 7), (5, 16), (40_000, 33), (70_000, 256)])
    func topKMatchesNaive(rows: Int, dimension: Int) {
        var rng = SeededRandom(seed: UInt64(rows * 31 + dimension))
        let keys = (0..<(rows * dimension)).map { _ in Float(Int(rng.next() % 2001) - 1000) / 1000 }
        let query = (0..<dimension).map { _ in Float(Int(rng.next() % 2001) - 1000) / 1000 }
        let live = (0..<rows).map { _ in rng.next() % 5 != 0 }
        for k in [1, 3, 10] {
            let fast = keys.withUnsafeBufferPointer { kp in
                live.withUnsafeBufferPointer { lp in
                    query.withUnsafeBufferPointer { qp in
                        KeySearch.topK(keys: kp.baseAddress!, dimension: dimension, rows: 0..<rows, live: lp,
                                       query: qp.baseAddress!, k: k, scale: 0.5)
                    }
                }
            }
            let slow = keys.withUnsafeBufferPointer { kp in
                live.withUnsafeBufferPointer { lp in
                    query.withUnsafeBufferPointer { qp in
                        KeySearch.topKNaive(keys: kp.baseAddress!, dimension: dimension, rows: 0..<rows, live: lp,
                                            query: qp.baseAddress!, k: k, scale: 0.5)
                    }
                }
            }
            #expect(fast.map(\.row) == slow.map(\.row))
            let worst = zip(fast, slow).map { abs($0.score - $1.score) }.max() ?? 0
            #expect(worst < 1e-3, "largest score difference \(worst)")
        }
    }

    /// `--threads` reaches key search: the scan is cut by `Threads.count`, and the result
    /// does not depend on the cut.
    @Test func theScanSplitsByTheOneThreadCount() {
        let rows = 5 * KeySearch.parallelThreshold, R = 8
        var rng = SeededRandom(seed: 5)
        let keys = (0..<(rows * R)).map { _ in rng.float() }
        let query = (0..<R).map { _ in rng.float() }
        func search() -> [SearchHit] {
            KeySearch.topK(keys: keys, dimension: R, rows: 3..<rows, live: nil, query: query, k: 5)
        }
        let one = Threads.withCount(1) { (KeySearch.split(rowCount: rows).parts, search()) }
        let two = Threads.withCount(2) { (KeySearch.split(rowCount: rows).parts, search()) }
        let three = Threads.withCount(3) { (KeySearch.split(rowCount: rows).parts, search()) }
        #expect([one.0, two.0, three.0] == [1, 2, 3])
        #expect(one.1 == two.1 && one.1 == three.1)
        // Below twice the threshold the scan stays on the calling thread.
        #expect(Threads.withCount(3) { KeySearch.split(rowCount: 2 * KeySearch.parallelThreshold - 1).parts } == 1)
    }

    @Test func crc32cStandardVectors() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8]()) == 0)
        let long = (0..<1000).map { UInt8($0 & 0xFF) }
        let split = long.withUnsafeBytes { b in
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[500...]),
                            continuing: CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[..<500])))
        }
        #expect(split == CRC32C.checksum(long))
    }

    @Test func factTextNormalization() {
        #expect(FactText.normalize("  The  cat\tsat\n ") == "The cat sat")
        #expect(FactText.normalize("Cafe\u{301}") == "Café")  // NFC
        #expect(FactText.key("PARIS  is") == "paris is")
        #expect(FactText.derivedID("Paris is") == FactText.derivedID(" paris   IS "))
        #expect(FactText.derivedID("x").count == 17)
    }
}

@Suite struct BatchSearchTests {
    @Test(arguments: [(3, 16, 1), (40_000, 64, 5)])
    func batchEqualsOneQueryAtATime(rows: Int, dimension: Int, queries: Int) {
        var rng = SeededRandom(seed: UInt64(rows + dimension))
        let keys = (0..<(rows * dimension)).map { _ in Float(Int(rng.next() % 2001) - 1000) / 1000 }
        let qs = (0..<(queries * dimension)).map { _ in Float(Int(rng.next() % 2001) - 1000) / 1000 }
        let live = (0..<rows).map { _ in rng.next() % 4 != 0 }
        keys.withUnsafeBufferPointer { kp in
            live.withUnsafeBufferPointer { lp in
                qs.withUnsafeBufferPointer { qp in
                    let batch = KeySearch.topK(keys: kp.baseAddress!, dimension: dimension, rows: 1..<rows, live: lp,
                                               queries: qp.baseAddress!, count: queries, k: 4, scale: 2)
                    #expect(batch.count == queries)
                    for q in 0..<queries {
                        let one = KeySearch.topK(keys: kp.baseAddress!, dimension: dimension, rows: 1..<rows, live: lp,
                                                 query: qp.baseAddress! + q * dimension, k: 4, scale: 2)
                        #expect(batch[q] == one)
                    }
                }
            }
        }
    }

    @Test func snapshotBatchSearchAppliesTheSentinelPerQuery() throws {
        let dir = try temporaryPath()
        let enc = HashingFactEncoder()
        let repo = try Repository(path: dir, encoder: enc)
        _ = try repo.commit((0..<20).map { add("Batch fact \($0)") })
        let queries = [enc.key(for: "Batch fact 3"), enc.key(for: "Batch fact 3").map { -$0 }, enc.key(for: "Batch fact 17")]
        let s = repo.snapshot()
        let batch = try s.search(queries, k: 2)
        #expect(batch == (try queries.map { try s.search($0, k: 2) }))
        #expect(batch[0].hits.first?.fact.statement == "Batch fact 3")
        #expect(batch[2].hits.first?.fact.statement == "Batch fact 17")
        #expect(try s.search([[Float]](), k: 1).isEmpty)
        #expect(throws: StorageError.self) { try s.search([[1, 2, 3]], k: 1) }
    }
}

@Suite struct BenchmarkEntryPointTests {
    /// The benchmark entry points run and check their results (timings are not asserted).
    @Test func benchmarksRunOnSmallSizes() throws {
        let search = try RetrievalBenchmark.run(rows: 2000, dimension: 32, queries: 8, k: 3, batch: 4)
        #expect(search.rows == 2000)
        let storage = try RepositoryBenchmark.run(directory: try temporaryPath("bench"), encoder: HashingFactEncoder(),
                                                  facts: 300, perStep: 100)
        #expect(storage.facts == 300)
        #expect(storage.bytesOnDisk > 0)
    }
}
