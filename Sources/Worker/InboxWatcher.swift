// An inbox directory of fact files. A file is acted on only once complete: after
// IN_CLOSE_WRITE or IN_MOVED_TO (inotify), or, for files that were already there at start
// and in polling mode, once its size and mtime have not changed for `settleSeconds`.
// Dotfiles and temporary names (*.partial, *.tmp, *~, *.swp) are never touched. A file is
// parsed, its facts committed (in batches, each one time step, durable when `commit`
// returns), its rejected lines written as "file:line: reason" into the rejected area, and
// only then is it renamed into the done area (and both directories fsynced).
import Glibc
import Posix
import Storage

public struct InboxFileReport: Sendable {
    public let name: String
    public let facts: Int
    /// Facts stored (added, superseded, retracted) by the repository.
    public let stored: Int
    public let duplicates: Int
    public let rejections: [FactRejection]
    /// Where the file went: the done area, or the rejected area for a file that is not a
    /// fact file.
    public let movedTo: String
    public let rejectionsFile: String?
}

public final class InboxWatcher: @unchecked Sendable {
    public let directory: String
    public let doneDirectory: String
    public let rejectedDirectory: String
    public var parser: FactParser
    /// Files larger than this are rejected whole.
    public var maximumFileBytes = 256 * 1024 * 1024
    /// Operations per `commit` call (one time step each).
    public var maximumBatch = 4096
    /// How long an unannounced file must stay unchanged before it counts as complete.
    public var settleSeconds: Double
    private let inotify: Inotify?
    /// Names announced complete by inotify and not yet processed.
    private var announced: Set<String> = []
    /// Names that must be announced (appeared after start while inotify runs).
    private let presentAtStart: Set<String>
    /// Set when the inotify queue overflowed: every file is then judged by the settle rule.
    private var overflowed = false

    /// Watches `directory` (created if absent). `done` and `rejected` default to
    /// `.done` and `.rejected` inside it (same file system, so the move is a rename).
    /// `polling: true`, or inotify being unavailable, uses the settle rule for every file.
    public init(directory: String, done: String? = nil, rejected: String? = nil,
                parser: FactParser = FactParser(sourceKind: .file), polling: Bool = false,
                settleSeconds: Double = 2) throws {
        self.directory = directory
        self.doneDirectory = done ?? directory + "/.done"
        self.rejectedDirectory = rejected ?? directory + "/.rejected"
        self.parser = parser
        self.settleSeconds = settleSeconds
        try FileSystem.makeDirectory(directory)
        try FileSystem.makeDirectory(doneDirectory)
        try FileSystem.makeDirectory(rejectedDirectory)
        var watcher: Inotify?
        if !polling {
            watcher = try? Inotify()
            if let w = watcher, (try? w.watch(directory)) == nil { watcher = nil }
        }
        inotify = watcher
        presentAtStart = Set(try FileSystem.list(directory))
    }

    /// Whether inotify is in use (false: polling fallback).
    public var usesInotify: Bool { inotify != nil }

    /// The inotify descriptor to poll, when inotify is in use.
    public var descriptor: Int32? { inotify?.descriptor.rawValue }

    /// Names the watcher never touches.
    public static func isIgnored(_ name: String) -> Bool {
        name.hasPrefix(".") || name.hasSuffix(".partial") || name.hasSuffix(".tmp") || name.hasSuffix("~")
            || name.hasSuffix(".swp")
    }

    /// Waits up to `timeoutMilliseconds` for inotify events (or just sleeps when polling);
    /// true when files may have become ready.
    public func wait(timeoutMilliseconds: Int32) throws -> Bool {
        guard let inotify else {
            _ = try Poll.wait([], timeoutMilliseconds: timeoutMilliseconds)
            return true
        }
        let r = try Poll.wait([(inotify.descriptor.rawValue, Poll.readable)], timeoutMilliseconds: timeoutMilliseconds)
        guard r[0] != 0 else { return false }
        drainEvents()
        return true
    }

    private func drainEvents() {
        guard let inotify, let events = try? inotify.readEvents() else { return }
        for e in events {
            if e.isOverflow { overflowed = true }  // events were lost: fall back to the settle rule
            if e.isCloseWrite || e.isMovedTo { announced.insert(e.name) }
        }
    }

    /// Complete files ready for `process`, in name order.
    public func readyFiles() throws -> [String] {
        drainEvents()
        var ready: [String] = []
        for name in try FileSystem.list(directory) where !Self.isIgnored(name) {
            let path = directory + "/" + name
            guard let st = try? FileSystem.status(path), (st.st_mode & S_IFMT) == S_IFREG else { continue }
            if announced.contains(name) { ready.append(name); continue }
            if inotify != nil && !overflowed && !presentAtStart.contains(name) { continue }
            let mtime = Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
            if wallSeconds() - mtime >= settleSeconds { ready.append(name) }
        }
        return ready
    }

    /// Parses `name`, commits its facts through `commit` (batches of `maximumBatch`),
    /// writes its rejections, and moves it to the done area once every batch returned.
    /// When `commit` throws, the file stays in the inbox and the error propagates.
    public func process(_ name: String, commit: ([FactOperation]) throws -> CommitReport) throws -> InboxFileReport {
        let path = directory + "/" + name
        announced.remove(name)
        var result = ParseResult()
        guard let format = FactFormat(path: name) else {
            // Not a fact file: it goes to the rejected area itself, with the reason next to it.
            let rejection = FactRejection(file: path, line: 0,
                                          reason: .refused("unknown fact file type (expected .jsonl, .json or .txt)"))
            let target = uniquePath(rejectedDirectory + "/" + name)
            try FileSystem.atomicReplace(target + ".rejections", with: Array((rejection.description + "\n").utf8))
            try FileSystem.rename(path, to: target)
            try FileSystem.syncDirectory(rejectedDirectory)
            try FileSystem.syncDirectory(directory)
            return InboxFileReport(name: name, facts: 0, stored: 0, duplicates: 0, rejections: [rejection],
                                   movedTo: target, rejectionsFile: target + ".rejections")
        }
        do {
            let size = FileSystem.size(path) ?? 0
            if size > maximumFileBytes {
                result.rejections.append(FactRejection(file: path, line: 0, reason: .lineTooLong(bytes: size, limit: maximumFileBytes)))
            } else {
                result = parser.parse(try FileSystem.readFile(path), format: format, file: path)
            }
        }

        var stored = 0, duplicates = 0
        var rejections = result.rejections
        for start in stride(from: 0, to: result.facts.count, by: maximumBatch) {
            let batch = Array(result.facts[start..<min(result.facts.count, start + maximumBatch)])
            let report = try commit(batch.map(\.operation))
            for (fact, outcome) in zip(batch, report.outcomes) {
                switch outcome {
                case .added, .superseded, .retracted: stored += 1
                case .duplicate: duplicates += 1
                case .notFound(let what):
                    rejections.append(FactRejection(file: path, line: fact.line, reason: .refused("no live fact \(what) to retract")))
                case .invalid(let why):
                    rejections.append(FactRejection(file: path, line: fact.line, reason: .refused(why)))
                }
            }
        }
        rejections.sort { $0.line < $1.line }

        var rejectionsFile: String?
        if !rejections.isEmpty {
            let target = uniquePath(rejectedDirectory + "/" + name + ".rejections")
            let text = rejections.map { $0.description + "\n" }.joined()
            try FileSystem.atomicReplace(target, with: Array(text.utf8))
            rejectionsFile = target
        }
        let done = uniquePath(doneDirectory + "/" + name)
        try FileSystem.rename(path, to: done)
        try FileSystem.syncDirectory(doneDirectory)
        try FileSystem.syncDirectory(directory)
        return InboxFileReport(name: name, facts: result.facts.count, stored: stored, duplicates: duplicates,
                               rejections: rejections, movedTo: done, rejectionsFile: rejectionsFile)
    }

    /// Processes every ready file; a file whose commit fails stays for the next round and
    /// its error is returned next to the reports.
    public func processReady(commit: ([FactOperation]) throws -> CommitReport) throws -> (reports: [InboxFileReport], failures: [(String, Error)]) {
        var reports: [InboxFileReport] = []
        var failures: [(String, Error)] = []
        for name in try readyFiles() {
            do { reports.append(try process(name, commit: commit)) } catch { failures.append((name, error)) }
        }
        return (reports, failures)
    }

    private func uniquePath(_ path: String) -> String {
        var candidate = path
        var n = 1
        while FileSystem.exists(candidate) { candidate = path + ".\(n)"; n += 1 }
        return candidate
    }
}

/// CLOCK_MONOTONIC in seconds.
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// CLOCK_REALTIME in seconds (comparable with file mtimes).
func wallSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
