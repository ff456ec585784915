// The time-step committer: one time step gathers every source, commits once, then hands
// each batch back to its source (files move aside); a failed commit loses nothing (files
// stay, stream lines are carried).
import Foundation
import Glibc
import Posix
import Storage
import TestSupport
import Testing
import Worker

@Suite struct TimeStepCommitterTests {
    /// `timeStep.stepPerFile` (the default): each inbox file is committed in steps of its
    /// own, while the stream lines gathered in the same window share one.
    @Test func eachInboxFileIsItsOwnTimeStep() throws {
        let root = try Fixtures.temporaryDirectory("ingest-per-file").path
        let inbox = try InboxWatcher(directory: root + "/inbox", settleSeconds: 0)
        let feed = try PipeReader(path: root + "/feed")
        let repo = try Repository(path: root + "/repo", encoder: HashingFactEncoder())
        let committer = TimeStepCommitter(sources: FactSources(inboxes: [inbox], pipes: [feed], standardInput: nil),
                                          repository: repo, policy: TimeStepPolicy(maximumOperations: 100, collectMilliseconds: 300))
        let writer = try FileDescriptor.open(root + "/feed", O_WRONLY | O_NONBLOCK)
        try write(root + "/inbox/a.txt", "Per-file fact one\nPer-file fact two\n")
        try write(root + "/inbox/b.txt", "Per-file fact three\n")
        try writer.writeAll(Array("Per-file pipe fact\nPer-file pipe fact two\n".utf8))
        let all = try committer.steps(until: { $0.counts.stored >= 5 }, rounds: 10, timeoutMilliseconds: 500)
        #expect(all.counts.stored == 5 && Set(all.files.map(\.name)) == ["a.txt", "b.txt"])
        // Two files and the pipe's lines: three steps, each file's facts in one of them.
        #expect(all.timeSteps.count == 3 && repo.currentTimeStep == 3, "\(all.timeSteps)")
        try? writer.close()
    }

    @Test func oneStepGathersAllSourcesAndFailuresLoseNothing() throws {
        let root = try Fixtures.temporaryDirectory("ingest").path
        let inbox = try InboxWatcher(directory: root + "/inbox")
        let feed = try PipeReader(path: root + "/feed")
        let enc = HashingFactEncoder()
        let repo = try Repository(path: root + "/repo", encoder: enc)
        let committer = TimeStepCommitter(sources: FactSources(inboxes: [inbox], pipes: [feed], standardInput: nil),
                                          repository: repo, policy: TimeStepPolicy(maximumOperations: 100, collectMilliseconds: 300,
                                                                                   stepPerFile: false))
        #expect(try committer.step(timeoutMilliseconds: 10) == nil)

        try write(root + "/inbox/a.jsonl", "{\"statement\": \"File fact one\"}\n{\"oops\": 1}\n")
        try write(root + "/inbox/b.txt", "File fact two\nFile fact one\n")
        let writer = try FileDescriptor.open(root + "/feed", O_WRONLY | O_NONBLOCK)
        try writer.writeAll(Array("Pipe fact\n{\"op\": \"retract\", \"id\": \"ghost\"}\n".utf8))
        let report = try #require(try committer.step(timeoutMilliseconds: 1000))
        // Everything that had arrived within the collection window is one time step.
        var all = report
        while all.files.count < 2 || all.counts.stored < 3, let more = try committer.step(timeoutMilliseconds: 500) {
            all.append(more)
        }
        #expect(report.timeSteps == [1])
        #expect(all.counts.stored == 3)
        #expect(all.counts.duplicates == 1)
        #expect(Set(all.files.map(\.name)) == ["a.jsonl", "b.txt"])
        #expect(all.rejections.map(\.reason).contains(.missingField("statement")))
        #expect(all.rejections.contains { $0.file == root + "/feed" && $0.line == 2 })
        #expect(repo.liveCount == 3)

        // A failing encoder: the step throws, the file stays, the pipe lines are carried.
        enc.failure = "model unavailable"
        try write(root + "/inbox/c.txt", "Late file fact\n")
        try writer.writeAll(Array("Late pipe fact\n".utf8))
        var thrown = false
        for _ in 0..<5 where !thrown {
            do { _ = try committer.step(timeoutMilliseconds: 500) } catch { thrown = true }
        }
        #expect(thrown)
        #expect(FileSystem.exists(root + "/inbox/c.txt"))
        enc.failure = nil
        let recovered = try committer.steps(until: { $0.counts.stored >= 2 }, rounds: 5, timeoutMilliseconds: 500)
        #expect(recovered.counts.stored == 2)
        #expect(recovered.files.map(\.name) == ["c.txt"])
        #expect(repo.fact(id: FactText.derivedID("Late pipe fact")) != nil)
        try writer.close()
    }
}
