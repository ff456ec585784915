// The fact sources: inbox directory (inotify and polling), named pipes reopened after a
// writer closes, standard input, and the line buffer under them; the batches they hand out
// and take back (`SourceBatch.complete`, `release`).
import Foundation
import Glibc
import Posix
import Storage
import TestSupport
import Testing
import Worker

func write(_ path: String, _ text: String) throws {
    let fd = try FileDescriptor.open(path, O_WRONLY | O_CREAT | O_TRUNC)
    try fd.writeAll(Array(text.utf8))
    try fd.close()
}

@Suite struct SourceTests {
    @Test func inboxActsOnlyOnCompleteFilesAndMovesThemAfterCommit() throws {
        let root = try Fixtures.temporaryDirectory("inbox").path
        let inbox = root + "/inbox"
        let watcher = try InboxWatcher(directory: inbox)
        #expect(watcher.usesInotify)
        let repo = try Repository(path: root + "/repo", encoder: HashingFactEncoder())
        let committer = TimeStepCommitter(inbox: watcher, repository: repo)

        try write(inbox + "/.hidden.jsonl", #"{"statement": "hidden"}"#)
        try write(inbox + "/upload.jsonl.partial", #"{"statement": "partial"}"#)
        try write(inbox + "/notes.txt~", "backup")
        let open = try FileDescriptor.open(inbox + "/growing.jsonl", O_WRONLY | O_CREAT)
        try open.writeAll(Array(#"{"statement": "still being written"}"#.utf8))
        try write(inbox + "/a.jsonl", """
        {"prompt": "The capital of France is", "target": "Paris", "subject": "France"}
        {"prompt": "broken"
        {"statement": "Rome is in Italy"}
        {"op": "retract", "id": "nothing-here"}
        """)
        try write(inbox + "/b.tmp", "[]")
        try FileSystem.rename(inbox + "/b.tmp", to: inbox + "/b.json")
        _ = try watcher.wait(timeoutMilliseconds: 1000)
        #expect(try watcher.readyFiles() == ["a.jsonl", "b.json"])

        let first = try committer.steps(until: { $0.files.count >= 2 })
        #expect(first.failures.isEmpty)
        #expect(first.files.map(\.name) == ["a.jsonl", "b.json"])
        #expect(first.files.last?.movedTo == inbox + "/.done/b.json")
        let report = try #require(first.files.first)
        #expect(report.facts == 3)
        #expect(report.counts.stored == 2)
        #expect(report.rejections.map(\.line) == [2, 4])
        #expect(report.movedTo == inbox + "/.done/a.jsonl")
        #expect(!FileSystem.exists(inbox + "/a.jsonl"))
        let rejected = String(decoding: try FileSystem.readFile(report.rejectionsFile!), as: UTF8.self)
        #expect(rejected.hasPrefix(inbox + "/a.jsonl:2: malformed JSON"))
        #expect(rejected.contains(inbox + "/a.jsonl:4: refused: no live fact nothing-here to retract"))
        #expect(repo.liveCount == 2)
        let rejectedLines = String(decoding: try FileSystem.readFile(inbox + "/.rejected/a.jsonl"), as: UTF8.self)
        #expect(rejectedLines == "{\"prompt\": \"broken\"\n{\"op\": \"retract\", \"id\": \"nothing-here\"}\n")

        // The same name dropped again goes to a fresh name in the done area.
        try write(inbox + "/a.jsonl", #"{"statement": "Rome is in Italy"}"#)
        _ = try watcher.wait(timeoutMilliseconds: 1000)
        let second = try committer.steps(until: { !$0.files.isEmpty })
        #expect(second.failures.isEmpty)
        #expect(second.files.map(\.name) == ["a.jsonl"])
        #expect(second.files.first?.counts.duplicates == 1)
        #expect(second.files.first?.movedTo == inbox + "/.done/a.jsonl.1")

        // The file still open for writing is only taken once closed.
        #expect(try watcher.readyFiles().isEmpty)
        try open.close()
        _ = try watcher.wait(timeoutMilliseconds: 1000)
        #expect(try watcher.readyFiles() == ["growing.jsonl"])
        #expect(FileSystem.exists(inbox + "/.hidden.jsonl"))
        #expect(FileSystem.exists(inbox + "/upload.jsonl.partial"))
    }

    @Test func failedCommitLeavesTheFileInTheInbox() throws {
        let root = try Fixtures.temporaryDirectory("inbox").path
        let watcher = try InboxWatcher(directory: root + "/in")
        let encoder = HashingFactEncoder()
        let repo = try Repository(path: root + "/repo", encoder: encoder)
        let committer = TimeStepCommitter(inbox: watcher, repository: repo)
        try write(root + "/in/f.txt", "One statement\nAnother statement\n")
        _ = try watcher.wait(timeoutMilliseconds: 1000)
        encoder.failure = "disk full"
        do {
            let r = try committer.steps(until: { !$0.files.isEmpty })
            Issue.record("the step was committed: \(r.files.map(\.name))")
        } catch {
            #expect("\(error)".contains("disk full"))
        }
        #expect(FileSystem.exists(root + "/in/f.txt"))
        encoder.failure = nil
        let r = try committer.steps(until: { !$0.files.isEmpty })
        #expect(r.files.map(\.name) == ["f.txt"])
        #expect(r.files.first?.counts.stored == 2)
    }

    @Test func pollingFallbackUsesTheSettleTime() throws {
        let root = try Fixtures.temporaryDirectory("inbox").path
        let watcher = try InboxWatcher(directory: root + "/in", polling: true, settleSeconds: 3600)
        #expect(!watcher.usesInotify)
        try write(root + "/in/x.jsonl", #"{"statement": "x"}"#)
        #expect(try watcher.readyFiles().isEmpty)
        watcher.settleSeconds = 0
        #expect(try watcher.readyFiles() == ["x.jsonl"])
    }

    @Test func filesPresentAtStartAreTakenOnceSettled() throws {
        let root = try Fixtures.temporaryDirectory("inbox").path
        try FileSystem.makeDirectory(root + "/in")
        try write(root + "/in/old.jsonl", #"{"statement": "x"}"#)
        let watcher = try InboxWatcher(directory: root + "/in", settleSeconds: 0)
        #expect(try watcher.readyFiles() == ["old.jsonl"])
        let unknown = try InboxWatcher(directory: root + "/in2", settleSeconds: 0)
        try write(root + "/in2/facts.csv", "a,b")
        _ = try unknown.wait(timeoutMilliseconds: 1000)
        let repo = try Repository(path: root + "/repo", encoder: HashingFactEncoder())
        let done = try TimeStepCommitter(inbox: unknown, repository: repo).steps(until: { !$0.files.isEmpty })
        #expect(done.timeSteps.isEmpty && repo.currentTimeStep == 0)  // nothing to commit
        let r = try #require(done.files.first)
        #expect(r.rejections.count == 1)
        #expect(r.movedTo == root + "/in2/.rejected/facts.csv")
        #expect(FileSystem.exists(root + "/in2/.rejected/facts.csv.rejections"))
    }

    @Test func namedPipeIsReopenedWhenTheWriterCloses() throws {
        let root = try Fixtures.temporaryDirectory("pipe").path
        let reader = try PipeReader(path: root + "/feed")
        #expect(try !reader.wait(timeoutMilliseconds: 10))
        // Reading with no writer at all sees end of file, and reopens (harmless).
        #expect(try reader.readAvailable() == ParseResult())
        let reopens = reader.reopenCount

        let w1 = try FileDescriptor.open(root + "/feed", O_WRONLY | O_NONBLOCK)
        try w1.writeAll(Array("First statement\n{\"prompt\": \"A is\", \"target\": \"B\"}\npartial".utf8))
        #expect(try reader.wait(timeoutMilliseconds: 1000))
        var r = try reader.readAvailable()
        #expect(r.facts.map(\.line) == [1, 2])
        #expect(r.facts[0].operation == .add(statement: "First statement", source: FactSource(kind: .pipe, name: root + "/feed", line: 1)))
        try w1.writeAll(Array(" line\n{bad json}\n".utf8))
        _ = try reader.wait(timeoutMilliseconds: 1000)
        r = try reader.readAvailable()
        #expect(r.facts.count == 1)
        #expect(r.rejections.map(\.line) == [4])
        try w1.writeAll(Array("no newline at close".utf8))
        try w1.close()
        _ = try reader.wait(timeoutMilliseconds: 1000)
        r = try reader.readAvailable()
        #expect(r.facts.map(\.line) == [5])
        #expect(reader.reopenCount == reopens + 1)
        // No busy loop: the reopened pipe does not poll as ready without a writer.
        #expect(try !reader.wait(timeoutMilliseconds: 50))

        let w2 = try FileDescriptor.open(root + "/feed", O_WRONLY | O_NONBLOCK)
        try w2.writeAll(Array("Second writer\n".utf8))
        #expect(try reader.wait(timeoutMilliseconds: 1000))
        r = try reader.readAvailable()
        #expect(r.facts.map(\.line) == [6])
        try w2.close()
    }

    @Test func pipeReaderRefusesARegularFile() throws {
        let root = try Fixtures.temporaryDirectory("pipe").path
        try write(root + "/plain", "x")
        #expect(throws: PosixError.self) { _ = try PipeReader(path: root + "/plain") }
    }

    @Test func standardInputUntilEndOfFile() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let input = try SourceStandardInput(descriptor: fds[0])
        close(fds[0])
        let writer = FileDescriptor(adopting: fds[1], path: "pipe")
        try writer.writeAll(Array("one\n{\"statement\": \"two\"}\nthree".utf8))
        var r = try input.readAvailable()
        #expect(r.facts.map(\.line) == [1, 2])
        #expect(!input.finished)
        try writer.close()
        r = try input.readAvailable()
        #expect(r.facts.map(\.line) == [3])
        #expect(r.facts[0].operation == .add(statement: "three", source: FactSource(kind: .stdin, name: "<stdin>", line: 3)))
        #expect(input.finished)
    }

    @Test func readsAreBoundedPerCall() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let input = try SourceStandardInput(descriptor: fds[0])
        close(fds[0])
        input.maximumBytesPerCall = 10
        let writer = FileDescriptor(adopting: fds[1], path: "pipe")
        try writer.writeAll(Array((1...30).map { "line \($0)\n" }.joined().utf8))
        try writer.close()
        var lines: [Int] = []
        var calls = 0
        while !input.finished && calls < 1000 {
            lines += try input.readAvailable().facts.map(\.line)
            calls += 1
        }
        #expect(lines == Array(1...30))
        #expect(calls > 10)
    }

    @Test func lineBufferIsChunkingIndependentAndSkipsOverlongLines() {
        let text = Array("alpha\n\(String(repeating: "x", count: 300))\nbeta\r\n{\"statement\": \"gamma\"}\nlast".utf8)
        let parser = FactParser(maximumLineBytes: 100, sourceKind: .pipe)
        var whole = SourceLineBuffer(name: "s", parser: parser)
        var all = whole.feed(text)
        let tail = whole.finish()
        all.facts += tail.facts
        all.rejections += tail.rejections
        #expect(all.facts.map(\.line) == [1, 3, 4, 5])
        // The rejection carries the line's first 100 bytes (what a pipe's rejection log keeps).
        #expect(all.rejections == [FactRejection(file: "s", line: 2, reason: .lineTooLong(bytes: 300, limit: 100),
                                                 text: Array(repeating: UInt8(ascii: "x"), count: 100))])
        for size in [1, 2, 7, 64] {
            var chunked = SourceLineBuffer(name: "s", parser: parser)
            var got = ParseResult()
            for start in stride(from: 0, to: text.count, by: size) {
                let r = chunked.feed(text[start..<min(text.count, start + size)])
                got.facts += r.facts
                got.rejections += r.rejections
            }
            let t = chunked.finish()
            got.facts += t.facts
            got.rejections += t.rejections
            #expect(got == all, "chunk size \(size)")
        }
    }
}

@Suite struct FactSourcesTests {
    @Test func oneTimeStepAcrossInboxPipeAndStandardInput() throws {
        let root = try Fixtures.temporaryDirectory("sources").path
        let inbox = try InboxWatcher(directory: root + "/inbox")
        let feed = try PipeReader(path: root + "/feed")
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let stdin = try SourceStandardInput(descriptor: fds[0])
        close(fds[0])
        let stdinWriter = FileDescriptor(adopting: fds[1], path: "stdin-writer")
        let sources = FactSources(inboxes: [inbox], pipes: [feed], standardInput: stdin)
        let repo = try Repository(path: root + "/repo", encoder: HashingFactEncoder())

        #expect(try sources.poll(timeoutMilliseconds: 10).batches.isEmpty)
        try write(root + "/inbox/a.txt", "From a file\n")
        let feeder = try FileDescriptor.open(root + "/feed", O_WRONLY | O_NONBLOCK)
        try feeder.writeAll(Array("From a pipe\n{broken\n".utf8))
        try stdinWriter.writeAll(Array("From stdin\n".utf8))
        var batches: [SourceBatch] = []
        for _ in 0..<20 where batches.count < 3 {
            batches += try sources.poll(timeoutMilliseconds: 200).batches
        }
        #expect(batches.map(\.origin) == [.file(inbox: root + "/inbox", name: "a.txt"), .pipe(root + "/feed"), .standardInput])
        #expect(batches[1].rejections.map(\.line) == [2])
        // Taken files are not offered again while in flight.
        #expect(try sources.poll(timeoutMilliseconds: 10).batches.isEmpty)

        // Stream lines cannot be offered again: a failed commit leaves them to the committer.
        #expect(!batches[1].release() && !batches[2].release())

        let report = try repo.commit(batches.flatMap(\.operations))
        #expect(report.timeStep == 1)
        var offset = 0
        for b in batches {
            let outcomes = Array(report.outcomes[offset..<offset + b.facts.count])
            offset += b.facts.count
            let r = try b.complete(outcomes: outcomes)
            if case .file = b.origin { #expect(r.file?.movedTo == root + "/inbox/.done/a.txt") } else { #expect(r.file == nil) }
        }
        #expect(repo.liveCount == 3)
        #expect(!FileSystem.exists(root + "/inbox/a.txt"))

        // A failed commit releases the file: it is offered again.
        try write(root + "/inbox/b.txt", "Another\n")
        var again: [SourceBatch] = []
        for _ in 0..<20 where again.isEmpty { again = try sources.poll(timeoutMilliseconds: 200).batches }
        #expect(again.count == 1 && again[0].release())
        #expect(try sources.poll(timeoutMilliseconds: 10).batches.map(\.origin) == [.file(inbox: root + "/inbox", name: "b.txt")])
        try feeder.close()
    }

    /// A file's rejected lines are copied from the bytes that were parsed, not read again at
    /// completion: a file renamed over it meanwhile (the inbox's writers are not trusted)
    /// changes neither them nor the facts.
    @Test func rejectedLinesAreThoseThatWereParsed() throws {
        let root = try Fixtures.temporaryDirectory("inbox-reread").path
        let inbox = try InboxWatcher(directory: root + "/in")
        let repo = try Repository(path: root + "/repo", encoder: HashingFactEncoder())
        try write(root + "/in/f.jsonl", "{\"statement\": \"Parsed fact\"}\n{parsed but broken\n")
        _ = try inbox.wait(timeoutMilliseconds: 1000)
        let batch = try inbox.take("f.jsonl")
        try write(root + "/other", "{\"statement\": \"Swapped fact\"}\n{swapped and broken\n")
        try FileSystem.rename(root + "/other", to: root + "/in/f.jsonl")
        let done = try batch.complete(outcomes: try repo.commit(batch.operations).outcomes)
        #expect(done.keptIn == root + "/in/.rejected/f.jsonl.rejections")
        #expect(done.rejections.map(\.line) == [2])
        #expect(done.file?.counts == OutcomeSummary([.added(id: "", sequence: 0)]))
        let lines = String(decoding: try FileSystem.readFile(root + "/in/.rejected/f.jsonl"), as: UTF8.self)
        #expect(lines == "{parsed but broken\n")
        #expect(repo.fact(id: FactText.derivedID("Parsed fact")) != nil)
    }
}
