// Readers on other threads while the writer commits and compacts: every snapshot a reader
// takes is self-consistent (each live row holds exactly its fact's encoding, the row
// count and time step only grow between compactions) and never crashes on a remapped or
// unlinked file.
import Dispatch
import Foundation
import Storage
import Testing

@Suite struct ConcurrentReaderTests {
    @Test func snapshotsStayConsistentUnderCommitsAndCompaction() throws {
        let dir = try temporaryPath("readers")
        let enc = HashingFactEncoder()
        let repo = try Repository(path: dir, encoder: enc)
        _ = try repo.commit([add("Seed fact")])
        let stop = Flag()
        let problems = Problems()
        let group = DispatchGroup()
        for reader in 0..<2 {
            DispatchQueue.global().async(group: group) {
                var lastStep: UInt64 = 0
                var checked = 0
                while !stop.isSet || checked == 0 {
                    let s = repo.snapshot()
                    if s.timeStep < lastStep { problems.add("reader \(reader): time step went back") }
                    lastStep = s.timeStep
                    for row in 1..<s.rowCount where s.isLive(row: row) {
                        guard let f = s.fact(row: row) else { problems.add("row \(row) without fact"); continue }
                        if s.key(row: row) != enc.key(for: f.statement) {
                            problems.add("reader \(reader): row \(row) of step \(s.timeStep) holds another key than \(f.id)")
                        }
                    }
                    if let hit = try? s.search(enc.key(for: "Seed fact"), k: 1).hits.first, hit.fact.statement != "Seed fact" {
                        problems.add("reader \(reader): seed fact not retrieved at step \(s.timeStep)")
                    }
                    checked += 1
                }
            }
        }
        for step in 0..<40 {
            _ = try repo.commit((0..<5).map { add("Step \(step) fact \($0)") } + [.retractStatement("Step \(max(0, step - 1)) fact 2")])
            if step % 10 == 9 { _ = try repo.compact() }
        }
        stop.set()
        group.wait()
        #expect(problems.items.isEmpty, "\(problems.items.prefix(5))")
        #expect(repo.snapshot().timeStep == 41)
    }
}

final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}

final class Problems: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func add(_ s: String) { lock.withLock { list.append(s) } }
    var items: [String] { lock.withLock { list } }
}
