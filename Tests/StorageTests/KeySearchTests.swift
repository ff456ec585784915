// The retrieval kernel against its scalar twin, and the log checksum against the standard.
import Posix
import Storage
import Testing

@Suite struct KeySearchTests {
    @Test(arguments: [(1, 7), (5, 16), (40_000, 33), (70_000, 256)])
    func topKMatchesNaive(rows: Int, dimension: Int) {
        var rng = SplitMix(seed: UInt64(rows * 31 + dimension))
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
