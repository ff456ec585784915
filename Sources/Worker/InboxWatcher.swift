// An inbox directory of fact files. A file is acted on only once complete: after
// IN_CLOSE_WRITE or IN_MOVED_TO (inotify), or, for files that were already there at start
// and in polling mode (or after an inotify queue overflow), once it has not been modified
// for `settleSeconds`. Dotfiles and temporary names (*.partial, *.tmp, *~, *.swp) are never
// touched. A file is parsed (`take`), its facts committed by the caller (durable when the
// commit returns), then (`complete`) its rejections are written as "file:line: reason"
// lines into the rejected area (`<name>.rejections`, plus the rejected lines themselves as
// `<name>` for line formats, ready to be fixed and dropped in again), and only then is it
// renamed into the done area (both directories fsynced).
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
    /// Names taken and not yet completed or released.
    private var inFlight: Set<String> = []
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
        for name in try FileSystem.list(directory) where !Self.isIgnored(name) && !inFlight.contains(name) {
            let path = directory + "/" + name
            guard let st = try? FileSystem.status(path), (st.st_mode & S_IFMT) == S_IFREG else { continue }
            if announced.contains(name) { ready.append(name); continue }
            if inotify != nil && !overflowed && !presentAtStart.contains(name) { continue }
            let mtime = Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
            if wallSeconds() - mtime >= settleSeconds { ready.append(name) }
        }
        return ready
    }

    /// Parses `name` into a batch without committing anything. The file stays in the inbox,
    /// marked in flight (not offered again) until `complete` or `release`.
    public func take(_ name: String) throws -> SourceBatch {
        let path = directory + "/" + name
        announced.remove(name)
        inFlight.insert(name)
        guard let format = FactFormat(path: name) else {
            return SourceBatch(origin: .file(inbox: directory, name: name), facts: [], rejections: [
                FactRejection(file: path, line: 0, reason: .refused("unknown fact file type (expected .jsonl, .json or .txt)"))])
        }
        var result = ParseResult()
        do {
            let size = FileSystem.size(path) ?? 0
            if size > maximumFileBytes {
                result.rejections.append(FactRejection(file: path, line: 0, reason: .lineTooLong(bytes: size, limit: maximumFileBytes)))
            } else {
                result = parser.parse(try FileSystem.readFile(path), format: format, file: path)
            }
        } catch {
            release(name)
            throw error
        }
        return SourceBatch(origin: .file(inbox: directory, name: name), facts: result.facts, rejections: result.rejections)
    }

    /// Gives a taken file back (its commit failed): it is offered again by `readyFiles`.
    public func release(_ name: String) {
        inFlight.remove(name)
        announced.insert(name)  // it was complete when taken
    }

    /// Finishes a taken file once every fact of it is durable: writes its rejections
    /// (parse errors plus `outcomes` that were refused, one per fact in order) as
    /// "file:line: reason" lines into the rejected area, then renames the file into the
    /// done area (a file that is not a fact file goes to the rejected area) and fsyncs both
    /// directories.
    public func complete(_ batch: SourceBatch, outcomes: [FactOutcome]) throws -> InboxFileReport {
        guard case .file(_, let name) = batch.origin else {
            throw PosixError(call: "complete", path: directory, errno: .invalidArgument)
        }
        let path = directory + "/" + name
        var stored = 0, duplicates = 0
        var rejections = batch.rejections
        for (fact, outcome) in zip(batch.facts, outcomes) {
            switch outcome {
            case .added, .superseded, .retracted: stored += 1
            case .duplicate: duplicates += 1
            case .notFound(let what):
                rejections.append(FactRejection(file: path, line: fact.line, reason: .refused("no live fact \(what) to retract")))
            case .invalid(let why):
                rejections.append(FactRejection(file: path, line: fact.line, reason: .refused(why)))
            }
        }
        rejections.sort { $0.line < $1.line }
        let isFactFile = FactFormat(path: name) != nil
        let destination = uniquePath((isFactFile ? doneDirectory : rejectedDirectory) + "/" + name)
        var rejectionsFile: String?
        if !rejections.isEmpty {
            let target = uniquePath(isFactFile ? rejectedDirectory + "/" + name + ".rejections" : destination + ".rejections")
            try FileSystem.atomicReplace(target, with: Array(rejections.map { $0.description + "\n" }.joined().utf8))
            rejectionsFile = target
            // For line formats, the rejected lines themselves too, in the file's own format,
            // so that they can be fixed and dropped into the inbox again.
            if let format = FactFormat(path: name), format != .json {
                let wanted = Set(rejections.map(\.line).filter { $0 > 0 })
                var lines: [ArraySlice<UInt8>] = []
                for (i, line) in try FileSystem.readFile(path).split(separator: 0x0A, omittingEmptySubsequences: false).enumerated()
                where wanted.contains(i + 1) {
                    lines.append(line)
                }
                if !lines.isEmpty {
                    let bytes = Array(lines.joined(separator: [0x0A])) + [0x0A]
                    try FileSystem.atomicReplace(uniquePath(rejectedDirectory + "/" + name), with: bytes)
                }
            }
        }
        try FileSystem.rename(path, to: destination)
        try FileSystem.syncDirectory(FileSystem.parent(of: destination))
        try FileSystem.syncDirectory(directory)
        inFlight.remove(name)
        return InboxFileReport(name: name, facts: batch.facts.count, stored: stored, duplicates: duplicates,
                               rejections: rejections, movedTo: destination, rejectionsFile: rejectionsFile)
    }

    /// `take`, then `commit` in slices of `maximumBatch` operations (one time step each),
    /// then `complete`. When `commit` throws, the file stays in the inbox (released) and
    /// the error propagates.
    public func process(_ name: String, commit: ([FactOperation]) throws -> CommitReport) throws -> InboxFileReport {
        let batch = try take(name)
        var outcomes: [FactOutcome] = []
        do {
            for start in stride(from: 0, to: batch.facts.count, by: maximumBatch) {
                let slice = batch.facts[start..<min(batch.facts.count, start + maximumBatch)]
                outcomes += try commit(slice.map(\.operation)).outcomes
            }
        } catch {
            release(name)
            throw error
        }
        return try complete(batch, outcomes: outcomes)
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

/// CLOCK_MONOTONIC in seconds (public: the default "now" of `ConnectionRegistry`'s calls).
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
