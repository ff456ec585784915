// Full disks and failing disks, injected through the syscall funnel: every failure is
// reported, nothing acknowledged is lost, the repository still opens afterwards.
import Foundation
import Posix
import Storage
import Testing
import TestSupport

@Suite struct FaultInjectionTests {
    @Test(arguments: [Errno.noSpace, Errno.io])
    func failedLogWriteAcknowledgesNothingAndKeepsWorking(_ errno: Errno) throws {
        let dir = try temporaryPath()
        let enc = HashingFactEncoder()
        let repo = try Repository(path: dir, encoder: enc)
        _ = try repo.commit([add("Acknowledged one")])
        let logSize = FileSystem.size(dir + "/facts.log")
        let plan = FaultPlan().fail(.write, onCall: 2, with: errno)
        plan.maximumWriteBytes = 5  // the first short write lands, the second fails
        do {
            _ = try plan.run { try repo.commit([add("Never acknowledged")]) }
            Issue.record("commit succeeded despite \(errno)")
        } catch let e as StorageError {
            #expect(e.errno == errno)
        }
        #expect(FileSystem.size(dir + "/facts.log") == logSize)  // truncated back
        #expect(repo.liveCount == 1)
        _ = try repo.commit([add("Acknowledged two")])
        try repo.close()
        let again = try Repository(path: dir, encoder: enc)
        #expect(again.openReport.tornTail == nil)
        #expect(liveIDs(again) == ["Acknowledged one", "Acknowledged two"].map(FactText.derivedID).sorted())
    }

    @Test func failedLogFsyncRefusesFurtherCommitsUntilReopened() throws {
        let dir = try temporaryPath()
        let enc = HashingFactEncoder()
        let repo = try Repository(path: dir, encoder: enc)
        _ = try repo.commit([add("Acknowledged one")])
        let plan = FaultPlan().fail(.fsync, with: .io)
        #expect(throws: StorageError.self) { _ = try plan.run { try repo.commit([add("Unknown fate")]) } }
        do {
            _ = try repo.commit([add("Refused")])
            Issue.record("commit after a failed fsync was accepted")
        } catch let e as StorageError {
            guard case .needsReopen = e else { Issue.record("expected needsReopen, got \(e)"); return }
        }
        try repo.close()
        let again = try Repository(path: dir, encoder: enc)
        // The unacknowledged fact may or may not be there (its bytes did reach the page
        // cache); the acknowledged one must be, and the repository must be consistent.
        #expect(again.fact(id: FactText.derivedID("Acknowledged one")) != nil)
        #expect(again.fact(id: FactText.derivedID("Refused")) == nil)
        _ = try again.commit([add("After reopen")])
        #expect(try retrieve(again, enc, "After reopen") == FactText.derivedID("After reopen"))
    }

    @Test func fullDiskWhenGrowingTheMatricesWritesNothing() throws {
        let dir = try temporaryPath()
        let enc = HashingFactEncoder()
        let repo = try Repository(path: dir, encoder: enc)
        let plan = FaultPlan().fail(.fallocate, with: .noSpace)
        do {
            _ = try plan.run { try repo.commit((0..<100).map { add("Bulk fact \($0)") }) }
            Issue.record("commit succeeded with a full disk")
        } catch let e as StorageError {
            #expect(e.errno == .noSpace)
        }
        #expect(FileSystem.size(dir + "/facts.log") == 16)
        #expect(repo.liveCount == 0)
        _ = try repo.commit((0..<100).map { add("Bulk fact \($0)") })
        #expect(repo.liveCount == 100)
    }

    @Test func msyncFailureIsAWarningAndRecoveryRederivesTheRows() throws {
        let dir = try temporaryPath()
        let enc = HashingFactEncoder()
        let repo = try Repository(path: dir, encoder: enc)
        _ = try repo.commit([add("Step one")])
        let plan = FaultPlan().fail(.msync, with: .io)
        let report = try plan.run { try repo.commit([add("Step two")]) }
        #expect(report.warnings.count == 1)
        #expect(report.warnings[0].contains("msync"))
        #expect(try retrieve(repo, enc, "Step two") == FactText.derivedID("Step two"))
        // A crash now: the manifest still names step one only, so step two is re-derived.
        let manifest = try readBytes(dir + "/MANIFEST")
        try repo.close()
        try writeBytes(dir + "/MANIFEST", manifest)
        let again = try Repository(path: dir, encoder: enc)
        #expect(again.openReport.rowsApplied == 1)
        #expect(try retrieve(again, enc, "Step two") == FactText.derivedID("Step two"))
    }

    @Test func manifestFailureIsAWarningAndTheNextStepCatchesUp() throws {
        let dir = try temporaryPath()
        let enc = HashingFactEncoder()
        let repo = try Repository(path: dir, encoder: enc)
        let plan = FaultPlan().fail(.rename, with: .noSpace)
        let report = try plan.run { try repo.commit([add("Step one")]) }
        #expect(report.warnings.first?.contains("manifest") == true)
        _ = try repo.commit([add("Step two")])
        let view = observe(repo)
        try repo.close()
        let again = try Repository(path: dir, encoder: enc)
        #expect(again.openReport.rowsApplied == 0)
        #expect(observe(again) == view)
    }

    @Test func randomFaultsNeverLoseAcknowledgedFacts() throws {
        let dir = try temporaryPath()
        let enc = HashingFactEncoder()
        var repo = try Repository(path: dir, encoder: enc)
        var rng = SeededRandom(seed: 2024)
        var acknowledged: Set<String> = []
        let kinds: [SyscallKind] = [.write, .fsync, .fdatasync, .fallocate, .msync, .rename, .ftruncate]
        for step in 0..<60 {
            let ops = (0..<Int(1 + rng.next() % 5)).map { add("Random fact \(step)-\($0)") }
            let plan = FaultPlan()
            if rng.next() % 2 == 0 {
                let kind = kinds[Int(rng.next() % UInt64(kinds.count))]
                plan.fail(kind, onCall: Int(1 + rng.next() % 3), with: rng.next() % 2 == 0 ? .noSpace : .io)
            }
            if rng.next() % 4 == 0 { plan.maximumWriteBytes = Int(1 + rng.next() % 50) }
            do {
                let report = try plan.run { try repo.commit(ops) }
                for case .added(let id, _) in report.outcomes { acknowledged.insert(id) }
            } catch let e as StorageError {
                if case .needsReopen = e {} else if e.errno == nil { Issue.record("unexpected \(e)") }
                try repo.close()
                repo = try Repository(path: dir, encoder: enc)
            }
            if step % 15 == 14 {
                try repo.close()
                repo = try Repository(path: dir, encoder: enc)
            }
        }
        try repo.close()
        let final = try Repository(path: dir, encoder: enc)
        let live = Set(liveIDs(final))
        #expect(acknowledged.isSubset(of: live))
        for id in acknowledged.prefix(20) {
            let f = try #require(final.fact(id: id))
            #expect(try retrieve(final, enc, f.statement) == id)
        }
    }
}

@Suite struct SpeedOptionTests {
    @Test func deferredMatrixSyncLosesNothingAcknowledged() throws {
        let dir = try temporaryPath()
        let enc = HashingFactEncoder()
        var options = RepositoryOptions()
        options.syncMatricesEvery = 4
        let repo = try Repository(path: dir, encoder: enc, options: options)
        let plan = FaultPlan()
        try plan.run {
            for i in 0..<6 { _ = try repo.commit([add("Deferred \(i)")]) }
        }
        #expect(plan.calls(.msync) == 3)  // once, at step 4, for the three files
        let view = observe(repo)
        // Simulate a crash: copy the directory as it is on disk now, without close().
        let crashed = dir + "-crash"
        try FileSystem.makeDirectory(crashed)
        for name in try FileSystem.list(dir) where name != "LOCK" && name != "torn" {
            try writeBytes(crashed + "/" + name, try readBytes(dir + "/" + name))
        }
        let again = try Repository(path: crashed, encoder: enc)
        #expect(again.openReport.rowsApplied == 2)  // steps 5 and 6 re-derived from the log
        #expect(observe(again) == view)
        #expect(repo.flush().isEmpty)
        try repo.close()
    }
}
