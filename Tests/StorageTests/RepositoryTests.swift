// Repository semantics: time steps, deduplication, supersession, retraction, retrieval
// with the sentinel rule, reopening, compaction, the writer lock.
import Foundation
import Posix
import Storage
import Testing

@Suite struct RepositoryTests {
    @Test func commitStoresAndRetrievesWithOneEncodeCallPerStep() throws {
        let dir = try temporaryPath()
        let enc = HashingFactEncoder()
        let repo = try Repository(path: dir, encoder: enc)
        #expect(repo.openReport.rebuilt == "new repository")
        let callsAfterOpen = enc.calls
        let report = try repo.commit([
            fact("The mother tongue of Danielle Darrieux is", "English", subject: "Danielle Darrieux"),
            add("Paris is the capital of France"),
            add("The Eiffel Tower is in Rome"),
        ])
        #expect(enc.calls == callsAfterOpen + 1)
        #expect(report.timeStep == 1)
        #expect(report.rowsWritten == 3)
        #expect(report.warnings.isEmpty)
        #expect(report.outcomes.allSatisfy { if case .added = $0 { return true } else { return false } })
        let id = try retrieve(repo, enc, "Paris is the capital of France")
        #expect(id == FactText.derivedID("Paris is the capital of France"))
        let s = repo.snapshot()
        #expect(s.rowCount == 4)
        #expect(s.timeStep == 1)
        #expect(s.fact(row: 1)?.subject == "Danielle Darrieux")
        #expect(s.fact(row: 1)?.statement == "The mother tongue of Danielle Darrieux is English")
    }

    @Test func sentinelRuleRejectsUnrelatedQueries() throws {
        let dir = try temporaryPath()
        let enc = HashingFactEncoder()
        let repo = try Repository(path: dir, encoder: enc)
        _ = try repo.commit([add("Paris is the capital of France")])
        let q = enc.key(for: "Paris is the capital of France")
        let hit = try repo.snapshot().search(q, k: 1, scale: 2)
        #expect(hit.hits.count == 1)
        #expect(abs(hit.hits[0].score - 2) < 1e-4)
        #expect(hit.sentinelScore == 0)
        // The opposite direction scores below the zero sentinel: no knowledge applies.
        let miss = try repo.snapshot().search(q.map { -$0 }, k: 1)
        #expect(miss.hits.isEmpty)
        #expect(miss.candidates.count == 1)
        #expect(throws: StorageError.self) { try repo.snapshot().search([1, 2], k: 1) }
    }

    @Test func duplicatesAreStoredOnce() throws {
        let dir = try temporaryPath()
        let enc = HashingFactEncoder()
        let repo = try Repository(path: dir, encoder: enc)
        _ = try repo.commit([add("Paris is the capital of France")])
        let r = try repo.commit([add("  paris is   the capital of FRANCE "), add("Paris is the capital of France")])
        let id = FactText.derivedID("Paris is the capital of France")
        #expect(r.outcomes == [.duplicate(existing: id), .duplicate(existing: id)])
        #expect(r.sequences == nil)
        #expect(r.timeStep == 1)
        #expect(repo.liveCount == 1)
        // Within one batch, too.
        let r2 = try repo.commit([add("Rome is in Italy"), add("Rome is  in Italy")])
        #expect(r2.outcomes[1] == .duplicate(existing: FactText.derivedID("Rome is in Italy")))
        #expect(repo.liveCount == 2)
    }

    @Test func newTargetForSameSubjectAndPromptSupersedes() throws {
        let dir = try temporaryPath()
        let enc = HashingFactEncoder()
        let repo = try Repository(path: dir, encoder: enc)
        let p = "The mother tongue of Danielle Darrieux is"
        _ = try repo.commit([fact(p, "French", subject: "Danielle Darrieux")])
        let r = try repo.commit([fact(p, "English", subject: "Danielle Darrieux")])
        guard case .superseded(let newID, _, let old) = r.outcomes[0] else {
            Issue.record("expected supersession, got \(r.outcomes)"); return
        }
        #expect(old == FactText.derivedID(p + " French"))
        #expect(repo.liveCount == 1)
        #expect(try retrieve(repo, enc, p + " French") == newID)  // the old row is dead; the new one is the best live row
        let snap = repo.snapshot()
        #expect(!snap.isLive(row: 1))
        #expect(snap.isLive(row: 2))
        #expect(snap.liveFacts.map(\.target) == ["English"])
        // Same prompt, other subject: a separate fact.
        let r2 = try repo.commit([fact(p, "German", subject: "Someone Else")])
        #expect({ if case .added = r2.outcomes[0] { return true } else { return false } }())
        // Reopen: the same view.
        let before = observe(repo)
        try repo.close()
        let again = try Repository(path: dir, encoder: enc)
        #expect(observe(again) == before)
        #expect(again.openReport.rebuilt == nil)
        #expect(again.openReport.rowsApplied == 0)
    }

    @Test func sameIDWithNewTextSupersedes() throws {
        let dir = try temporaryPath()
        let repo = try Repository(path: dir, encoder: HashingFactEncoder())
        _ = try repo.commit([add("Pluto is a planet", id: "pluto")])
        let r = try repo.commit([add("Pluto is a dwarf planet", id: "pluto")])
        #expect({ if case .superseded("pluto", _, "pluto") = r.outcomes[0] { return true } else { return false } }())
        #expect(repo.fact(id: "pluto")?.statement == "Pluto is a dwarf planet")
        #expect(repo.liveCount == 1)
    }

    @Test func retractByIDAndByStatement() throws {
        let dir = try temporaryPath()
        let enc = HashingFactEncoder()
        let repo = try Repository(path: dir, encoder: enc)
        _ = try repo.commit([add("A is B", id: "ab"), add("C is D"), add("E is F")])
        let r = try repo.commit([.retractID("ab"), .retractStatement("c IS d"), .retractID("nope"), .retractStatement("X is Y")])
        #expect(r.outcomes == [.retracted(id: "ab"), .retracted(id: FactText.derivedID("C is D")), .notFound("nope"), .notFound("X is Y")])
        #expect(liveIDs(repo) == [FactText.derivedID("E is F")])
        #expect(try retrieve(repo, enc, "A is B") != "ab")
        // A retracted statement can be added again.
        let again = try repo.commit([add("A is B", id: "ab")])
        #expect(again.outcomes == [.added(id: "ab", sequence: 6)])
        #expect(try retrieve(repo, enc, "A is B") == "ab")
    }

    @Test func invalidOperationsAreReportedNotStored() throws {
        let dir = try temporaryPath()
        var options = RepositoryOptions()
        options.maximumTextBytes = 20
        let repo = try Repository(path: dir, encoder: HashingFactEncoder(), options: options)
        let r = try repo.commit([add("   "), add(String(repeating: "x", count: 21)), add("short fact")])
        #expect(r.outcomes[0] == .invalid("empty statement"))
        #expect({ if case .invalid = r.outcomes[1] { return true } else { return false } }())
        #expect(repo.liveCount == 1)
    }

    @Test func compactionKeepsRetrievalIdenticalAndReadersConsistent() throws {
        let dir = try temporaryPath()
        let enc = HashingFactEncoder()
        let repo = try Repository(path: dir, encoder: enc)
        let statements = (0..<200).map { "Fact number \($0) is true" }
        _ = try repo.commit(statements.map { add($0) })
        _ = try repo.commit(stride(from: 0, to: 200, by: 3).map { .retractStatement(statements[$0]) })
        let old = repo.snapshot()
        let queries = statements.map { enc.key(for: $0) } + [enc.key(for: "unrelated")]
        let before = try queries.map { try old.search($0, k: 3).hits.map { [$0.fact.id: $0.score] } }
        let report = try repo.compact()
        #expect(report.rowsBefore == 201)
        #expect(report.rowsAfter == 201 - 67)
        let new = repo.snapshot()
        #expect(new.rowCount == 134)
        #expect(new.generation == old.generation + 1)
        let after = try queries.map { try new.search($0, k: 3).hits.map { [$0.fact.id: $0.score] } }
        #expect(after == before)
        // The old snapshot still reads its (now unlinked) generation consistently.
        let stillOld = try queries.map { try old.search($0, k: 3).hits.map { [$0.fact.id: $0.score] } }
        #expect(stillOld == before)
        #expect(try FileSystem.list(dir).filter { $0.hasSuffix(".f32") }.sorted() == ["keys.2.f32", "prompts.2.f32"])
        // And the compacted repository reopens to the same view and keeps working.
        let view = observe(repo)
        try repo.close()
        let again = try Repository(path: dir, encoder: enc)
        #expect(observe(again) == view)
        #expect(again.openReport.rebuilt == nil)
        _ = try again.commit([add("After compaction")])
        #expect(try retrieve(again, enc, "After compaction") == FactText.derivedID("After compaction"))
    }

    @Test func compactIfNeededFollowsThePolicy() throws {
        let dir = try temporaryPath()
        let repo = try Repository(path: dir, encoder: HashingFactEncoder())
        _ = try repo.commit((0..<20).map { add("Policy fact \($0)") })
        _ = try repo.commit((0..<4).map { .retractStatement("Policy fact \($0)") })
        #expect(try repo.compactIfNeeded(minimumDeadRows: 5, deadFraction: 0.1) == nil)
        #expect(try repo.compactIfNeeded(minimumDeadRows: 4, deadFraction: 0.25) == nil)
        let r = try #require(try repo.compactIfNeeded(minimumDeadRows: 4, deadFraction: 0.2))
        #expect(r.rowsAfter == 17)
        #expect(repo.stats.deadRows == 0)
    }

    @Test func secondWriterIsLockedOut() throws {
        let dir = try temporaryPath()
        let repo = try Repository(path: dir, encoder: HashingFactEncoder())
        #expect(throws: StorageError.self) { _ = try Repository(path: dir, encoder: HashingFactEncoder()) }
        try repo.close()
        #expect(throws: StorageError.self) { _ = try repo.commit([add("x")]) }
        _ = try Repository(path: dir, encoder: HashingFactEncoder())
    }

    @Test func growsPastInitialCapacityAcrossManySteps() throws {
        let dir = try temporaryPath()
        let enc = HashingFactEncoder()
        let repo = try Repository(path: dir, encoder: enc)
        for step in 0..<30 {
            _ = try repo.commit((0..<10).map { add("Step \(step) fact \($0)") })
        }
        #expect(repo.liveCount == 300)
        #expect(repo.currentTimeStep == 30)
        for s in ["Step 0 fact 0", "Step 17 fact 5", "Step 29 fact 9"] {
            #expect(try retrieve(repo, enc, s) == FactText.derivedID(s))
        }
    }

    @Test func encoderFailureWritesNothing() throws {
        let dir = try temporaryPath()
        let enc = HashingFactEncoder()
        let repo = try Repository(path: dir, encoder: enc)
        enc.failure = "model not loaded"
        #expect(throws: StorageError.self) { _ = try repo.commit([add("x is y")]) }
        enc.failure = nil
        #expect(repo.liveCount == 0)
        #expect(FileSystem.size(dir + "/facts.log") == 16)
        _ = try repo.commit([add("x is y")])
        #expect(repo.liveCount == 1)
    }
}

@Suite struct RollbackTests {
    @Test func refusedStepLeavesSupersessionAndRetractionUndone() throws {
        let dir = try temporaryPath()
        let enc = HashingFactEncoder()
        let repo = try Repository(path: dir, encoder: enc)
        let p = "The capital of Narnia is"
        _ = try repo.commit([fact(p, "Cair Paravel", subject: "Narnia"), add("Keep me", id: "keep")])
        enc.failure = "out of memory"
        #expect(throws: StorageError.self) {
            _ = try repo.commit([fact(p, "Aslan's How", subject: "Narnia"), .retractID("keep"), add("New one")])
        }
        enc.failure = nil
        #expect(repo.fact(id: "keep") != nil)
        #expect(repo.fact(id: FactText.derivedID(p + " Cair Paravel")) != nil)
        #expect(repo.liveCount == 2)
        let r = try repo.commit([fact(p, "Aslan's How", subject: "Narnia"), .retractID("keep"), add("New one")])
        #expect(r.sequences == 3...6)
        #expect(repo.liveCount == 2)
        try repo.close()
        let again = try Repository(path: dir, encoder: enc)
        #expect(again.openReport.skippedRecords.isEmpty)
        #expect(liveIDs(again) == [FactText.derivedID(p + " Aslan's How"), FactText.derivedID("New one")].sorted())
    }
}

@Suite struct UniquenessTests {
    @Test func idTextAndSlotStayUniqueAmongLiveFacts() throws {
        let dir = try temporaryPath()
        let enc = HashingFactEncoder()
        let repo = try Repository(path: dir, encoder: enc)
        _ = try repo.commit([add("Statement A", id: "x"), add("Statement B", id: "y"),
                             fact("The capital of Narnia is", "Cair Paravel", subject: "Narnia", id: "z")])
        // Id x now says B, which y says: x supersedes its old self, y is retracted.
        let r = try repo.commit([add("Statement B", id: "x")])
        #expect(r.outcomes == [.superseded(id: "x", sequence: 6, replaced: "x")])
        #expect(r.sequences == 4...6)
        #expect(liveIDs(repo) == ["x", "z"])
        // A new id for the same subject + prompt with a new target replaces z.
        let r2 = try repo.commit([fact("The capital of Narnia is", "Aslan's How", subject: "Narnia", id: "w")])
        #expect(r2.outcomes == [.superseded(id: "w", sequence: 8, replaced: "z")])
        // The same text under another id: the new id takes it over.
        let r3 = try repo.commit([add("Statement B", id: "v")])
        #expect(r3.outcomes == [.superseded(id: "v", sequence: 10, replaced: "x")])
        // An empty id is no id.
        let r4 = try repo.commit([add("Statement C", id: "")])
        #expect(r4.outcomes == [.added(id: FactText.derivedID("Statement C"), sequence: 11)])
        let view = observe(repo)
        #expect(view.facts.keys.sorted() == ["v", "w", FactText.derivedID("Statement C")].sorted())
        try repo.close()
        let again = try Repository(path: dir, encoder: enc)
        #expect(again.openReport.skippedRecords.isEmpty)
        #expect(observe(again) == view)
    }
}

@Suite struct LogCompactionTests {
    @Test func compactedLogKeepsTheLiveFactsAndTheArchiveKeepsHistory() throws {
        let dir = try temporaryPath()
        let enc = HashingFactEncoder()
        let repo = try Repository(path: dir, encoder: enc)
        let p = "The capital of Narnia is"
        _ = try repo.commit((0..<10).map { add("Log fact \($0)") } + [fact(p, "Cair Paravel", subject: "Narnia")])
        _ = try repo.commit([fact(p, "Aslan's How", subject: "Narnia"), .retractStatement("Log fact 3")])
        _ = try repo.commit([.retractStatement("Log fact 9")])  // the last record is a retraction
        let view = observe(repo)
        let oldLog = try readBytes(dir + "/facts.log")
        let report = try repo.compactLog()
        #expect(report.recordsBefore == 15)
        #expect(report.recordsAfter == 10)  // 9 live adds + a checkpoint
        #expect(report.bytesAfter < report.bytesBefore)
        #expect(try readBytes(try #require(report.archive)) == oldLog)
        #expect(observe(repo) == view)
        #expect(repo.stats.deadRows == 0)
        // Appends continue after the old last sequence; retrieval works; reopen agrees.
        let r = try repo.commit([add("After log compaction")])
        #expect(r.sequences == 16...16)
        #expect(try retrieve(repo, enc, "After log compaction") == FactText.derivedID("After log compaction"))
        let after = observe(repo)
        try repo.close()
        let again = try Repository(path: dir, encoder: enc)
        #expect(again.openReport.recordsReplayed == 11)
        #expect(again.openReport.rebuilt == nil)
        #expect(again.openReport.rowsApplied == 0)
        #expect(again.currentTimeStep == 4)
        #expect(observe(again) == after)
        // Once more without an archive; then the log holds exactly the live facts.
        _ = try again.commit([.retractStatement("Log fact 0")])
        let second = try again.compactLog(keepArchive: false)
        #expect(second.archive == nil)
        #expect(try FileSystem.list(dir).filter { $0.hasSuffix(".archive") }.count == 1)
        let final = observe(again)
        try again.close()
        let third = try Repository(path: dir, encoder: enc)
        #expect(observe(third) == final)
        #expect(third.openReport.tornTail == nil)
    }
}
