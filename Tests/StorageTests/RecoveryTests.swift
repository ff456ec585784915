// Recovery at open: torn or corrupt log tails, lost or damaged matrix files, stale or
// corrupt manifests, a changed encoder. The invariant checked everywhere: what a reader
// sees after recovery equals a fresh encoding of the live facts of the log.
import Foundation
import Posix
import Storage
import Testing
import TestSupport

/// Commits three steps (5 + 3 + 2 facts, a retraction and a supersession in between).
private func populate(_ repo: Repository) throws {
    _ = try repo.commit((0..<5).map { add("First step fact \($0)") })
    _ = try repo.commit([fact("The capital of Narnia is", "Cair Paravel", subject: "Narnia"),
                         .retractStatement("First step fact 1"), add("Second step fact A"), add("Second step fact B")])
    _ = try repo.commit([fact("The capital of Narnia is", "Aslan's How", subject: "Narnia"), add("Third step fact")])
}

/// Checks that every live fact's rows are exactly the encoder's output for its statement.
private func expectFreshEncoding(_ repo: Repository, _ enc: HashingFactEncoder,
                                 sourceLocation: SourceLocation = #_sourceLocation) throws {
    let s = repo.snapshot()
    #expect(s.key(row: 0) == enc.sentinel().key, sourceLocation: sourceLocation)
    for f in s.liveFacts {
        let (k, p) = try enc.encode([f.statement])
        let row = (1..<s.rowCount).first { s.isLive(row: $0) && s.fact(row: $0)?.id == f.id }!
        #expect(s.key(row: row) == k, sourceLocation: sourceLocation)
        #expect(s.prompt(row: row) == p, sourceLocation: sourceLocation)
    }
}

@Suite struct RecoveryTests {
    @Test func reopenWithoutDamageAppliesNothing() throws {
        let dir = try temporaryPath()
        let enc = HashingFactEncoder()
        let repo = try Repository(path: dir, encoder: enc)
        try populate(repo)
        let view = observe(repo)
        try repo.close()
        let calls = enc.calls
        let again = try Repository(path: dir, encoder: enc)
        #expect(enc.calls == calls)
        #expect(again.openReport.rebuilt == nil)
        #expect(again.openReport.tornTail == nil)
        #expect(again.openReport.recordsReplayed == 12)
        #expect(again.openReport.liveFacts == 8)
        #expect(again.currentTimeStep == 3)
        #expect(observe(again) == view)
        try expectFreshEncoding(again, enc)
    }

    @Test func truncatedTailIsCutKeptAsideAndReported() throws {
        let dir = try temporaryPath()
        let enc = HashingFactEncoder()
        let repo = try Repository(path: dir, encoder: enc)
        try populate(repo)
        try repo.close()
        let log = try readBytes(dir + "/facts.log")
        try writeBytes(dir + "/facts.log", Array(log.dropLast(5)))
        let again = try Repository(path: dir, encoder: enc)
        let torn = try #require(again.openReport.tornTail)
        #expect(torn.record == 12)
        #expect(torn.reason.contains("bytes left"))
        #expect(try readBytes(torn.savedPath) == Array(log[torn.offset..<(log.count - 5)]))
        #expect(FileSystem.size(dir + "/facts.log") == torn.offset)
        // The manifest had applied record 14, which is gone: the generation is rebuilt.
        #expect(again.openReport.rebuilt?.contains("log ends at record 11") == true)
        #expect(again.fact(id: FactText.derivedID("Third step fact")) == nil)
        #expect(again.liveCount == 7)
        try expectFreshEncoding(again, enc)
        // And it goes on: a new step appends after the cut.
        _ = try again.commit([add("After the cut")])
        try again.close()
        let third = try Repository(path: dir, encoder: enc)
        #expect(third.openReport.tornTail == nil)
        #expect(third.liveCount == 8)
    }

    /// A flipped byte in an acknowledged record with intact records after it: the open is
    /// refused and every file left as it was; `repairLog` then keeps every intact record,
    /// saves the damaged frame in torn/ and the damaged log whole, and the next open keeps
    /// every row (the lost record's row is dead) without re-encoding anything.
    @Test func flippedByteInTheMiddleIsRefusedUntouchedThenSalvaged() throws {
        let dir = try temporaryPath()
        let enc = HashingFactEncoder()
        let repo = try Repository(path: dir, encoder: enc)
        try populate(repo)
        let view = observe(repo)
        try repo.close()
        var log = try readBytes(dir + "/facts.log")
        // Damage the 6th record (first of step 2, "Cair Paravel", superseded in step 3).
        var offset = 16
        for _ in 0..<5 { offset += 8 + Int(log[offset]) + Int(log[offset + 1]) << 8 }
        let end6 = offset + 8 + Int(log[offset]) + Int(log[offset + 1]) << 8
        log[offset + 20] ^= 0x40
        try writeBytes(dir + "/facts.log", log)
        let files = try FileSystem.list(dir).sorted()

        var refused: LogDamage?
        do { _ = try Repository(path: dir, encoder: enc) } catch StorageError.damagedLog(let d) { refused = d }
        let damage = try #require(refused, "a log damaged in the middle must be refused")
        #expect(damage.offset == offset)
        #expect(damage.lastIntactRecord == 5)
        #expect(damage.intactRecordsAfter == 6)
        #expect(damage.reason.contains("checksum mismatch"))
        #expect("\(StorageError.damagedLog(damage))".contains("recipe repair"))
        #expect(try readBytes(dir + "/facts.log") == log, "a refused log is left untouched")
        #expect(try FileSystem.list(dir).sorted() == files)

        let repair = try Repository.repairLog(path: dir)
        let salvage = try #require(repair.salvage)
        #expect(repair.records == 11)
        #expect(salvage.damaged.count == 1)
        let kept = salvage.damaged[0]
        #expect(kept.range.offset == offset && kept.range.length == end6 - offset)
        #expect(kept.range.after == 5 && kept.range.before == 7)
        #expect(try readBytes(kept.savedPath) == Array(log[offset..<end6]))
        #expect(try readBytes(salvage.archivePath) == log, "the damaged log is kept whole")
        #expect(try readBytes(dir + "/facts.log") == Array(log[..<offset] + log[end6...]))
        // A second repair finds nothing to do.
        #expect(try Repository.repairLog(path: dir).salvage == nil)

        let again = try Repository(path: dir, encoder: enc)
        #expect(again.openReport.rebuilt == nil, "rows of intact records are kept: \(again.openReport.rebuilt ?? "")")
        #expect(again.openReport.rowsApplied == 0)
        #expect(again.openReport.recordsReplayed == 11)
        // The lost record was superseded later: the supersession no longer applies, and
        // the live facts are exactly those before the damage.
        #expect(again.openReport.skippedRecords.count == 1)
        #expect(observe(again) == view)
        try expectFreshEncoding(again, enc)
        _ = try again.commit([add("After the salvage")])
        #expect(again.liveCount == 9)
    }

    /// The same open with `salvageDamagedLog` set salvages in place and reports it.
    @Test func salvageOptionOpensADamagedLog() throws {
        let dir = try temporaryPath()
        let enc = HashingFactEncoder()
        let repo = try Repository(path: dir, encoder: enc)
        try populate(repo)
        try repo.close()
        var log = try readBytes(dir + "/facts.log")
        log[16 + 8 + 3] ^= 0x01  // the first record
        try writeBytes(dir + "/facts.log", log)
        var options = RepositoryOptions()
        options.salvageDamagedLog = true
        let again = try Repository(path: dir, encoder: enc, options: options)
        #expect(again.openReport.salvage?.damaged.first?.range.after == 0)
        #expect(again.openReport.salvage?.damaged.first?.range.before == 2)
        #expect(again.openReport.recordsReplayed == 11)
        #expect(again.fact(id: FactText.derivedID("First step fact 0")) == nil)
        #expect(again.liveCount == 7)
        try expectFreshEncoding(again, enc)
    }

    @Test func garbageAppendedIsCutWithoutLosingRecords() throws {
        let dir = try temporaryPath()
        let enc = HashingFactEncoder()
        let repo = try Repository(path: dir, encoder: enc)
        try populate(repo)
        let view = observe(repo)
        try repo.close()
        let log = try readBytes(dir + "/facts.log")
        try writeBytes(dir + "/facts.log", log + [0xFF, 0x00, 0x13, 0x37, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42])
        let again = try Repository(path: dir, encoder: enc)
        #expect(again.openReport.tornTail?.offset == log.count)
        #expect(again.openReport.tornTail?.length == 11)
        #expect(again.openReport.rebuilt == nil)
        #expect(observe(again) == view)
    }

    @Test func headerOfAnotherFormatIsRefused() throws {
        let dir = try temporaryPath()
        try writeBytes(dir + "/facts.log", Array("this is not a fact log at all".utf8))
        #expect(throws: StorageError.self) { _ = try Repository(path: dir, encoder: HashingFactEncoder()) }
        // The file was left alone.
        #expect(try readBytes(dir + "/facts.log") == Array("this is not a fact log at all".utf8))
    }

    @Test(arguments: ["keys.1.f32", "prompts.1.f32", "rows.1.u64"])
    func deletedMatrixFileIsRebuiltFromTheLog(_ name: String) throws {
        let dir = try temporaryPath()
        let enc = HashingFactEncoder()
        let repo = try Repository(path: dir, encoder: enc)
        try populate(repo)
        let view = observe(repo)
        try repo.close()
        try FileSystem.unlink(dir + "/" + name)
        let again = try Repository(path: dir, encoder: enc)
        #expect(again.openReport.rebuilt?.contains("no file") == true)
        #expect(observe(again) == view)
        #expect(again.snapshot().generation == 2)
        #expect(!FileSystem.exists(dir + "/keys.1.f32"))
        try expectFreshEncoding(again, enc)
    }

    @Test(arguments: ["keys.1.f32", "prompts.1.f32", "rows.1.u64"])
    func truncatedMatrixFileIsRebuilt(_ name: String) throws {
        let dir = try temporaryPath()
        let enc = HashingFactEncoder()
        let repo = try Repository(path: dir, encoder: enc)
        try populate(repo)
        let view = observe(repo)
        try repo.close()
        let bytes = try readBytes(dir + "/" + name)
        try writeBytes(dir + "/" + name, Array(bytes.prefix(4096 + 10)))
        let again = try Repository(path: dir, encoder: enc)
        #expect(again.openReport.rebuilt != nil)
        #expect(observe(again) == view)
    }

    @Test func corruptRowMapIsDetected() throws {
        let dir = try temporaryPath()
        let enc = HashingFactEncoder()
        let repo = try Repository(path: dir, encoder: enc)
        try populate(repo)
        let view = observe(repo)
        try repo.close()
        var bytes = try readBytes(dir + "/rows.1.u64")
        bytes[4096 + 8 * 3] = 0xEE
        try writeBytes(dir + "/rows.1.u64", bytes)
        let again = try Repository(path: dir, encoder: enc)
        #expect(again.openReport.rebuilt?.contains("row 3") == true)
        #expect(observe(again) == view)
    }

    @Test func changedFingerprintReencodesEveryLiveFactWithProgress() throws {
        let dir = try temporaryPath()
        let repo = try Repository(path: dir, encoder: HashingFactEncoder(fingerprint: "model-A"))
        try populate(repo)
        let ids = liveIDs(repo)
        try repo.close()
        let newEncoder = HashingFactEncoder(keyDimension: 24, promptRows: 2, promptWidth: 5, fingerprint: "model-B")
        var options = RepositoryOptions()
        options.rebuildBatchSize = 3
        let progress = ProgressLog()
        let again = try Repository(path: dir, encoder: newEncoder, options: options) { progress.append($0) }
        #expect(again.openReport.rebuilt?.contains("fingerprint changed") == true)
        #expect(newEncoder.calls == 3)  // 8 live facts in batches of 3
        #expect(progress.items.map(\.done) == [0, 3, 6, 8])
        #expect(progress.items.allSatisfy { $0.total == 8 })
        #expect(liveIDs(again) == ids)
        #expect(again.snapshot().keyDimension == 24)
        try expectFreshEncoding(again, newEncoder)
        // Same fingerprint but other dimensions also rebuild.
        try again.close()
        let third = try Repository(path: dir, encoder: HashingFactEncoder(keyDimension: 8, fingerprint: "model-B"))
        #expect(third.openReport.rebuilt?.contains("dimensions changed") == true)
    }

    @Test func corruptOrMissingManifestRebuilds() throws {
        let dir = try temporaryPath()
        let enc = HashingFactEncoder()
        let repo = try Repository(path: dir, encoder: enc)
        try populate(repo)
        let view = observe(repo)
        try repo.close()
        var m = try readBytes(dir + "/MANIFEST")
        m[m.count - 3] ^= 0x01
        try writeBytes(dir + "/MANIFEST", m)
        let again = try Repository(path: dir, encoder: enc)
        #expect(again.openReport.rebuilt?.contains("checksum mismatch") == true)
        #expect(observe(again) == view)
        try again.close()
        try FileSystem.unlink(dir + "/MANIFEST")
        let third = try Repository(path: dir, encoder: enc)
        #expect(third.openReport.rebuilt == "no manifest")
        #expect(observe(third) == view)
        #expect(try FileSystem.list(dir).filter { $0.hasSuffix(".f32") }.sorted() == ["keys.3.f32", "prompts.3.f32"])
    }

    @Test func staleManifestReplaysTheMissingSteps() throws {
        // A crash after the log fsync of step 3 but before its manifest replace.
        let dir = try temporaryPath()
        let enc = HashingFactEncoder()
        let repo = try Repository(path: dir, encoder: enc)
        _ = try repo.commit((0..<5).map { add("First step fact \($0)") })
        let manifestAfterStep1 = try readBytes(dir + "/MANIFEST")
        _ = try repo.commit([add("Second A"), add("Second B"), .retractStatement("First step fact 0")])
        _ = try repo.commit([add("Third")])
        let view = observe(repo)
        try repo.close()
        try writeBytes(dir + "/MANIFEST", manifestAfterStep1)
        let calls = enc.calls
        let again = try Repository(path: dir, encoder: enc)
        #expect(again.openReport.rebuilt == nil)
        #expect(again.openReport.rowsApplied == 3)
        #expect(enc.calls == calls + 1)
        #expect(observe(again) == view)
        try again.close()
        let third = try Repository(path: dir, encoder: enc)
        #expect(third.openReport.rowsApplied == 0)
        #expect(observe(third) == view)
    }

    @Test func damagedSentinelRowIsRestored() throws {
        let dir = try temporaryPath()
        let enc = HashingFactEncoder()
        let repo = try Repository(path: dir, encoder: enc)
        try populate(repo)
        try repo.close()
        var bytes = try readBytes(dir + "/keys.1.f32")
        bytes[4096] = 0x7F
        try writeBytes(dir + "/keys.1.f32", bytes)
        let again = try Repository(path: dir, encoder: enc)
        #expect(again.snapshot().key(row: 0) == enc.sentinel().key)
    }

    @Test func recoveryEqualsAFreshEncodingOfTheLog() throws {
        // Drive one repository through many steps, then throw away every derived file.
        let dir = try temporaryPath()
        let enc = HashingFactEncoder()
        let repo = try Repository(path: dir, encoder: enc)
        var rng = SeededRandom(seed: 7)
        for step in 0..<20 {
            var ops: [FactOperation] = []
            for i in 0..<Int(rng.next() % 8) {
                ops.append(fact("Subject \(rng.next() % 15) has property", "value \(step)-\(i)", subject: "S"))
            }
            if rng.next() % 3 == 0 { ops.append(.retractStatement("Subject \(rng.next() % 15) has property value 1-0")) }
            _ = try repo.commit(ops)
            if step == 10 { _ = try repo.compact() }
        }
        let view = observe(repo)
        try repo.close()
        for name in try FileSystem.list(dir) where name.hasSuffix(".f32") || name.hasSuffix(".u64") || name == "MANIFEST" {
            try FileSystem.unlink(dir + "/" + name)
        }
        let again = try Repository(path: dir, encoder: enc)
        #expect(again.openReport.rebuilt == "no manifest")
        #expect(observe(again) == view)
        try expectFreshEncoding(again, enc)
    }
}

final class ProgressLog: @unchecked Sendable {
    private let lock = NSLock()
    private var _items: [RebuildProgress] = []
    func append(_ p: RebuildProgress) { lock.withLock { _items.append(p) } }
    var items: [RebuildProgress] { lock.withLock { _items } }
}


@Suite struct LogFuzzTests {
    /// Random damage anywhere after the header. Cut or garbage at the end: the repository
    /// opens and keeps exactly the records before the damage. A flipped byte: in the last
    /// record it is a torn tail; anywhere else the open is refused with the log untouched,
    /// and a repair keeps every record but the damaged one.
    @Test func randomDamageNeverDropsAnIntactRecord() throws {
        let dir = try temporaryPath("fuzz")
        let enc = HashingFactEncoder(keyDimension: 4, promptRows: 1, promptWidth: 2)
        let repo = try Repository(path: dir, encoder: enc)
        for step in 0..<8 { _ = try repo.commit((0..<3).map { add("Fuzz fact \(step)-\($0)") }) }
        try repo.close()
        let log = try readBytes(dir + "/facts.log")
        var ends: [Int] = []  // end offset of each record
        var offset = 16
        while offset < log.count {
            offset += 8 + (Int(log[offset]) | Int(log[offset + 1]) << 8 | Int(log[offset + 2]) << 16)
            ends.append(offset)
        }
        #expect(ends.count == 24)
        var rng = SeededRandom(seed: 99)
        for round in 0..<60 {
            let copy = dir + "-\(round)"
            try FileSystem.makeDirectory(copy)
            var damaged = log
            let at = 16 + Int(rng.next() % UInt64(log.count - 16))
            switch round % 3 {
            case 0: damaged[at] ^= UInt8(1 + rng.next() % 255)
            case 1: damaged.removeLast(log.count - at)
            default: damaged += (0..<Int(1 + rng.next() % 40)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            }
            try writeBytes(copy + "/facts.log", damaged)
            let before = ends.filter { $0 <= at }.count
            if round % 3 == 0 && before < 23 {
                do {
                    _ = try Repository(path: copy, encoder: enc)
                    Issue.record("round \(round): damage at \(at) in record \(before + 1) was not refused")
                } catch StorageError.damagedLog(let d) {
                    #expect(d.lastIntactRecord == UInt64(before) && d.intactRecordsAfter == 23 - before, "round \(round)")
                }
                #expect(try readBytes(copy + "/facts.log") == damaged, "round \(round): refused log changed")
                #expect(try Repository.repairLog(path: copy).records == 23, "round \(round)")
            }
            let opened = try Repository(path: copy, encoder: enc)
            let kept = round % 3 == 2 ? 24 : round % 3 == 0 && before < 23 ? 23 : before
            #expect(opened.openReport.recordsReplayed == kept, "round \(round): damage at \(at)")
            #expect(opened.liveCount == kept)
            let cleanCut = round % 3 == 1 && ends.contains(at)
            let salvaged = round % 3 == 0 && before < 23
            #expect((opened.openReport.tornTail != nil) == !(cleanCut || salvaged), "round \(round)")
            try opened.close()
            try? FileManager.default.removeItem(atPath: copy)
        }
    }

    /// Scans of hostile bytes: several damaged ranges, zeros, every prefix; never a trap.
    @Test func scanFindsEveryIntactFrameBetweenDamagedRanges() throws {
        let dir = try temporaryPath("scan")
        let repo = try Repository(path: dir, encoder: HashingFactEncoder())
        for i in 0..<20 { _ = try repo.commit([add("Scan statement \(i)")]) }
        try repo.close()
        let log = try readBytes(dir + "/facts.log")
        var ends: [Int] = []
        var offset = 16
        while offset < log.count { offset += 8 + (Int(log[offset]) | Int(log[offset + 1]) << 8); ends.append(offset) }
        var damaged = log
        damaged[ends[3] + 9] ^= 0xFF      // record 5
        damaged[ends[10] + 2] ^= 0x10     // record 12 (its length field)
        let zeros = [UInt8](repeating: 0, count: 300)
        let repair = dir + "-repair"
        try FileSystem.makeDirectory(repair)
        try writeBytes(repair + "/facts.log", damaged + zeros)
        let r = try Repository.repairLog(path: repair)
        #expect(r.records == 18)
        let ranges = try #require(r.salvage).damaged.map(\.range)
        #expect(ranges.map(\.after) == [4, 11, 20])
        #expect(ranges.map(\.before) == [6, 13, nil])
        #expect(ranges.last?.length == 300)
        var rng = SeededRandom(seed: 7)
        for round in 0..<40 {
            var bytes = log
            for _ in 0..<4 { bytes[16 + Int(rng.next() % UInt64(bytes.count - 16))] = UInt8(truncatingIfNeeded: rng.next()) }
            let copy = dir + "-hostile-\(round)"
            try FileSystem.makeDirectory(copy)
            try writeBytes(copy + "/facts.log", Array(bytes.prefix(16 + Int(rng.next() % UInt64(bytes.count - 15)))))
            _ = try Repository.repairLog(path: copy)
            try? FileManager.default.removeItem(atPath: copy)
        }
    }
}
