// The inbox treats what is dropped into it as hostile: only regular files are read (a
// symbolic link, a FIFO or a directory is moved to the rejected area with the reason, and a
// swap between the check and the open is caught on the opened descriptor), a file that
// cannot be read is moved aside once instead of failing at every poll, a move that fails is
// retried with back-off, and names up to NAME_MAX still get their side files. Files go the
// way the worker takes them: `FactSources` -> `TimeStepCommitter` -> the batch's completion.
import Foundation
import Glibc
import Posix
import Storage
import TestSupport
import Testing
import Worker

/// `lstat(2)`'s file type of `path` (S_IFREG, S_IFLNK, ...), or nil when absent.
private func entryType(_ path: String) -> mode_t? {
    var st = stat()
    return lstat(path, &st) == 0 ? st.st_mode & S_IFMT : nil
}

private func text(_ path: String) throws -> String { String(decoding: try FileSystem.readFile(path), as: UTF8.self) }

@Suite struct InboxRefusalTests {
    @Test func symbolicLinksFIFOsAndDirectoriesAreMovedAsideUnread() throws {
        let root = try Fixtures.temporaryDirectory("inbox-refusal").path
        let inbox = root + "/in"
        let watcher = try InboxWatcher(directory: inbox)
        let repo = try Repository(path: root + "/repo", encoder: HashingFactEncoder())
        let committer = TimeStepCommitter(inbox: watcher, repository: repo)
        // Readable by the worker, not meant for the inbox's writers.
        try write(root + "/secret.txt", "The vault code is 4711\n")
        #expect(symlink(root + "/secret.txt", root + "/evil.txt") == 0)
        #expect(mkfifo(root + "/feed.jsonl", 0o600) == 0)
        try FileSystem.makeDirectory(root + "/folder.json")
        for name in ["evil.txt", "feed.jsonl", "folder.json"] { try FileSystem.rename(root + "/" + name, to: inbox + "/" + name) }
        try write(inbox + "/good.txt", "A regular statement\n")
        _ = try watcher.wait(timeoutMilliseconds: 1000)

        let all = try committer.steps(until: { $0.files.count >= 4 })
        let reports = all.files
        #expect(all.failures.isEmpty)
        #expect(reports.map(\.name) == ["evil.txt", "feed.jsonl", "folder.json", "good.txt"])
        #expect(repo.liveCount == 1)
        #expect(repo.fact(id: FactText.derivedID("The vault code is 4711")) == nil)
        // The link itself moved (rename(2) does not follow it); the target is untouched.
        #expect(entryType(inbox + "/.rejected/evil.txt") == S_IFLNK)
        #expect(entryType(inbox + "/.rejected/feed.jsonl") == S_IFIFO)
        #expect(entryType(inbox + "/.rejected/folder.json") == S_IFDIR)
        #expect(entryType(root + "/secret.txt") == S_IFREG)
        #expect(try text(inbox + "/.rejected/evil.txt.rejections").contains("symbolic link"))
        #expect(try text(inbox + "/.rejected/feed.jsonl.rejections").contains("FIFO"))
        #expect(try text(inbox + "/.rejected/folder.json.rejections").contains("directory"))
        #expect(reports.prefix(3).allSatisfy { $0.rejections.count == 1 && $0.facts == 0 })
        #expect(try FileSystem.list(inbox) == [".done", ".rejected"])
    }

    @Test func aSwapBetweenTheCheckAndTheOpenIsCaught() throws {
        let root = try Fixtures.temporaryDirectory("inbox-swap").path
        let inbox = root + "/in"
        let watcher = try InboxWatcher(directory: inbox)
        let repo = try Repository(path: root + "/repo", encoder: HashingFactEncoder())
        try write(root + "/secret.txt", "The vault code is 4711\n")
        #expect(symlink(root + "/secret.txt", root + "/link") == 0)
        try write(inbox + "/swapped.txt", "Harmless statement\n")
        _ = try watcher.wait(timeoutMilliseconds: 1000)
        #expect(try watcher.readyFiles() == ["swapped.txt"])

        // Just before the file is opened, a symbolic link replaces it (rename(2) is atomic).
        let plan = FaultPlan()
        let (link, target) = (root + "/link", inbox + "/swapped.txt")
        plan.observer = { kind, n in if kind == .open && n == 1 { _ = Glibc.rename(link, target) } }
        let committer = TimeStepCommitter(inbox: watcher, repository: repo)
        let all = try plan.run { try committer.steps(until: { !$0.files.isEmpty }) }
        #expect(all.timeSteps.isEmpty)
        let report = try #require(all.files.first)
        #expect(repo.fact(id: FactText.derivedID("The vault code is 4711")) == nil)
        #expect(report.movedTo == inbox + "/.rejected/swapped.txt")
        #expect(entryType(report.movedTo) == S_IFLNK)
        #expect(report.rejections.map(\.line) == [0])
    }

    @Test func anUnreadableFileIsReportedOnceAndMovedAside() throws {
        let root = try Fixtures.temporaryDirectory("inbox-unreadable").path
        let inbox = try InboxWatcher(directory: root + "/in")
        let repo = try Repository(path: root + "/repo", encoder: HashingFactEncoder())
        let committer = TimeStepCommitter(sources: FactSources(inboxes: [inbox]), repository: repo,
                                          policy: TimeStepPolicy(maximumOperations: 100, collectMilliseconds: 10))
        try write(root + "/in/locked.txt", "Nobody may read this\n")
        // The worker's open(2) of the file is refused (tests run as root, which no mode bits stop).
        let plan = FaultPlan().fail(.open, onCall: 1, with: .permissionDenied)
        var rejections: [FactRejection] = []
        var failures: [String] = []
        try plan.run {
            for _ in 0..<8 {
                guard let r = try committer.step(timeoutMilliseconds: 100) else { continue }
                rejections += r.rejections
                failures += r.failures
            }
        }
        #expect(failures == [])
        #expect(rejections.count == 1)
        #expect(rejections.first?.line == 0)
        #expect(rejections.first?.description.contains("Permission denied") == true)
        #expect(repo.liveCount == 0)
        #expect(!FileSystem.exists(root + "/in/locked.txt"))
        #expect(FileSystem.exists(root + "/in/.rejected/locked.txt"))
        #expect(try text(root + "/in/.rejected/locked.txt.rejections").contains("Permission denied"))
    }

    @Test func aFailedMoveIsRetriedWithBackOff() throws {
        let root = try Fixtures.temporaryDirectory("inbox-backoff").path
        let watcher = try InboxWatcher(directory: root + "/in")
        let repo = try Repository(path: root + "/repo", encoder: HashingFactEncoder())
        try write(root + "/in/stuck.txt", "A statement that sticks\n")
        _ = try watcher.wait(timeoutMilliseconds: 1000)
        // The rename(2) into the done area fails until the plan is lifted. A step's parts one
        // by one (take, commit, complete), so that only the completion runs under the plan.
        var plan = FaultPlan().fail(.rename, times: .max, with: .permissionDenied)
        func attempt() throws -> Error? {
            let batch = try watcher.take("stuck.txt")
            let outcomes = try repo.commit(batch.operations).outcomes
            do { _ = try plan.run { try batch.complete(outcomes: outcomes) } } catch { return error }
            return nil
        }
        let first = try #require(try attempt())
        #expect("\(first)".contains("retrying in 1 s"))
        // Not offered at every poll: only once the back-off has passed (1 s, then 2 s, ...).
        #expect(try watcher.readyFiles().isEmpty)
        usleep(1_300_000)
        #expect(try watcher.readyFiles() == ["stuck.txt"])
        let second = try #require(try attempt())
        #expect("\(second)".contains("retrying in 2 s"))
        usleep(1_300_000)
        #expect(try watcher.readyFiles().isEmpty)
        usleep(1_000_000)
        #expect(try watcher.readyFiles() == ["stuck.txt"])
        plan = FaultPlan()
        #expect(try attempt() == nil)
        #expect(FileSystem.exists(root + "/in/.done/stuck.txt"))
        #expect(repo.liveCount == 1)
    }

    @Test func namesUpToNameMaxGetSideFilesThatFit() throws {
        let root = try Fixtures.temporaryDirectory("inbox-long").path
        let inbox = root + "/in"
        let watcher = try InboxWatcher(directory: inbox)
        let repo = try Repository(path: root + "/repo", encoder: HashingFactEncoder())
        let committer = TimeStepCommitter(inbox: watcher, repository: repo)
        let long = String(repeating: "x", count: 249) + ".jsonl"  // 255 bytes, NAME_MAX
        let accents = String(repeating: "é", count: 122) + ".jsonl"  // 250 bytes, 2 per "é"
        for round in 1...2 {
            try write(inbox + "/" + long, "{\"statement\": \"Long name fact \(round)\"}\n{broken\n")
            try write(inbox + "/" + accents, "{\"statement\": \"Accented fact \(round)\"}\n\n{\"statement\": 5}\n")
            _ = try watcher.wait(timeoutMilliseconds: 1000)
            let all = try committer.steps(until: { $0.files.count >= 2 })
            let reports = all.files
            #expect(all.failures.isEmpty, "\(all.failures)")
            #expect(reports.map(\.counts.stored) == [1, 1])
            #expect(reports.allSatisfy { $0.rejectionsFile != nil && $0.rejections.count == 1 })
        }
        #expect(try FileSystem.list(inbox) == [".done", ".rejected"])
        #expect(repo.liveCount == 4)
        let done = try FileSystem.list(inbox + "/.done")
        let rejected = try FileSystem.list(inbox + "/.rejected")
        #expect(done.count == 4)
        #expect(rejected.count == 8)
        for name in done + rejected {
            #expect(name.utf8.count <= 255)
            #expect(!name.contains("\u{FFFD}"))  // cut on a UTF-8 boundary
        }
        // Each of the four: its reasons, and its rejected lines under its own extension, so
        // that they can be fixed and dropped into the inbox again.
        #expect(rejected.filter { $0.hasSuffix(".rejections") }.count == 4)
        let lines = rejected.filter { !$0.hasSuffix(".rejections") }
        #expect(lines.count == 4 && lines.allSatisfy { $0.hasSuffix(".jsonl") || $0.contains(".jsonl.") })
        for name in lines where name.hasPrefix("x") { #expect(try text(inbox + "/.rejected/" + name) == "{broken\n") }
        for name in lines where name.hasPrefix("é") { #expect(try text(inbox + "/.rejected/" + name) == "{\"statement\": 5}\n") }
        #expect(lines.contains { $0.hasPrefix("xxxx") && $0.hasSuffix(".jsonl") })
        #expect(lines.contains { $0.hasPrefix("éé") && $0.hasSuffix(".jsonl") })
    }
}
