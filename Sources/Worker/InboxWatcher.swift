// An inbox directory of fact files. A file is acted on only once complete: after
// IN_CLOSE_WRITE or IN_MOVED_TO (inotify), or, for files that were already there at start
// and in polling mode (or after an inotify queue overflow), once it has not been modified
// for `settleSeconds`. Dotfiles and temporary names (*.partial, *.tmp, *~, *.swp) are never
// touched. A file is parsed into a batch (`take`), its facts committed by the
// `TimeStepCommitter` (durable when the commit returns), then the batch is completed: its
// rejections are written as "file:line: reason" lines into the rejected area
// (`<name>.rejections`, plus the rejected lines themselves as `<name>` for line formats,
// copied from the bytes that were parsed, ready to be fixed and dropped in again), and only
// then is the file renamed into the done area (both directories fsynced).
//
// Whoever can write the inbox is not trusted with what the worker can read: only regular
// files are read, judged with lstat and opened with O_NOFOLLOW, then checked again on the
// descriptor (a file swapped in between is caught). A symbolic link, FIFO, directory or
// device, and a file that cannot be read for good (EACCES, EPERM), is moved unread to the
// rejected area with a `.rejections` file saying why (rename(2) moves a link itself). A
// failure that may pass (EIO, a move that fails) is retried with back-off, so that one bad
// file is reported once per attempt rather than at every poll. Side-file names always fit
// in NAME_MAX (`SideFileName`).
import Glibc
import Posix
import Storage

public final class InboxWatcher: @unchecked Sendable {
    public let directory: String
    public let doneDirectory: String
    public let rejectedDirectory: String
    public var parser: FactParser
    /// Files larger than this are rejected whole.
    public var maximumFileBytes = 256 * 1024 * 1024
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
    /// Names whose reading or moving failed, offered again only after their back-off.
    private var retries: [String: Retry] = [:]
    /// First delay before a failed file is tried again, and the longest it doubles to.
    public var retryBackoff: (first: Double, maximum: Double) = (1, 300)

    private struct Retry {
        var delay: Double
        /// `monotonicSeconds()` before which the file is not offered.
        var notBefore: Double
        /// Where the last attempt put its side files, rewritten (not duplicated) by the next.
        var sideFiles: SideFiles?
    }

    /// What a taken file's batch keeps for its completion.
    private struct Taken: Sendable {
        let name: String
        /// False for a file that is not a fact file or was refused unread: it goes to the
        /// rejected area rather than the done area.
        let isFactFile: Bool
        /// The bytes parsed, in a line format (the rejected lines are copied out of them).
        let lines: [UInt8]?
    }

    /// Where `complete` puts a file and its rejections.
    private struct SideFiles {
        var destination: String
        var rejections: String
        /// The rejected lines themselves (fact files in a line format).
        var lines: String?
    }

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

    /// Complete files ready for `take`, in name order. Entries that are not regular files
    /// are ready at once (to be moved aside), files in back-off once it has passed.
    public func readyFiles() throws -> [String] {
        drainEvents()
        let names = try FileSystem.list(directory)
        if !retries.isEmpty {  // forget files that went away
            let present = Set(names)
            retries = retries.filter { present.contains($0.key) }
        }
        var ready: [String] = []
        for name in names where !Self.isIgnored(name) && !inFlight.contains(name) {
            let path = directory + "/" + name
            if path == doneDirectory || path == rejectedDirectory { continue }
            if let retry = retries[name] {
                if monotonicSeconds() >= retry.notBefore { ready.append(name) }
                continue
            }
            // lstat: a symbolic link is judged as itself, never by what it points to.
            guard let st = try? FileSystem.linkStatus(path) else { continue }
            if FileType(st) != .regular { ready.append(name); continue }
            if announced.contains(name) { ready.append(name); continue }
            if inotify != nil && !overflowed && !presentAtStart.contains(name) { continue }
            let mtime = Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
            if wallSeconds() - mtime >= settleSeconds { ready.append(name) }
        }
        return ready
    }

    /// Parses `name` into a batch without committing anything. The file stays in the inbox,
    /// marked in flight (not offered again) until the batch is completed or released
    /// (`SourceBatch.complete`, `release`). A file that is not a regular file, or cannot be
    /// read for good, becomes a batch without facts and one rejection saying why; its
    /// completion moves it to the rejected area. Other failures throw
    /// `WorkerError.sourceRetry`: the file is offered again after its back-off.
    public func take(_ name: String) throws -> SourceBatch {
        let path = directory + "/" + name
        announced.remove(name)
        inFlight.insert(name)
        func batch(_ taken: Taken, _ facts: [ParsedFact], _ rejections: [FactRejection]) -> SourceBatch {
            SourceBatch(origin: .file(inbox: directory, name: name), facts: facts, rejections: rejections,
                        complete: { [self] batch, outcomes in try complete(taken, batch, outcomes: outcomes) },
                        release: { [self] in release(name); return true })
        }
        func rejected(_ reason: RejectionReason, factFile: Bool) -> SourceBatch {
            batch(Taken(name: name, isFactFile: factFile, lines: nil), [], [FactRejection(file: path, line: 0, reason: reason)])
        }
        guard let format = FactFormat(path: name) else {  // not read at all
            return rejected(.refused("unknown fact file type (expected .jsonl, .json or .txt)"), factFile: false)
        }
        let bytes: [UInt8]
        do {
            switch try contents(of: path) {
            case .bytes(let b): bytes = b
            case .refused(let why): return rejected(.refused(why), factFile: false)
            case .tooLarge(let size): return rejected(.lineTooLong(bytes: size, limit: maximumFileBytes), factFile: true)
            }
        } catch {
            throw retryLater(name, error)
        }
        let result = parser.parse(bytes, format: format, file: path)
        return batch(Taken(name: name, isFactFile: true, lines: format == .json ? nil : bytes), result.facts, result.rejections)
    }

    private enum Contents {
        case bytes([UInt8])
        /// Not to be read, ever: moved to the rejected area with this reason.
        case refused(String)
        case tooLarge(Int)
    }

    /// The bytes of the regular file at `path`, read without following a symbolic link.
    private func contents(of path: String) throws -> Contents {
        // The entry itself first, so that a FIFO or a device is not even opened.
        let type = FileType(try FileSystem.linkStatus(path))
        guard type == .regular else { return .refused("not a regular file but a \(type); only regular files are read") }
        do {
            let fd = try FileDescriptor.openForReadingNoFollow(path)
            // The descriptor, not the name: a FIFO or directory renamed over the file since
            // the lstat is caught here (a symbolic link already failed the open with ELOOP).
            let st = try fd.status()
            guard FileType(st) == .regular else { return .refused("not a regular file but a \(FileType(st)); only regular files are read") }
            if Int(st.st_size) > maximumFileBytes { return .tooLarge(Int(st.st_size)) }
            let bytes = try fd.readAll()
            try fd.close()
            return .bytes(bytes)
        } catch let e as PosixError where e.errno == .symbolicLinkLoop {
            return .refused("not a regular file but a symbolic link (it replaced the file while it was being opened); only regular files are read")
        } catch let e as PosixError where e.errno == .permissionDenied || e.errno == .notPermitted {
            // Persists until someone changes the file: retrying would only repeat the error.
            return .refused("cannot be read: \(e)")
        }
    }

    /// Marks a taken file for another attempt after its back-off (1 s, doubling up to 5 min
    /// by default) and returns the error that says so.
    private func retryLater(_ name: String, _ error: Error) -> Error {
        inFlight.remove(name)
        var retry = retries[name] ?? Retry(delay: 0, notBefore: 0, sideFiles: nil)
        retry.delay = retry.delay == 0 ? retryBackoff.first : min(retryBackoff.maximum, retry.delay * 2)
        retry.notBefore = monotonicSeconds() + retry.delay
        retries[name] = retry
        return WorkerError.sourceRetry(path: directory + "/" + name, reason: "\(error)", retrySeconds: retry.delay)
    }

    /// Gives a taken file back (its commit failed): it is offered again by `readyFiles`.
    private func release(_ name: String) {
        inFlight.remove(name)
        announced.insert(name)  // it was complete when taken
    }

    /// Finishes a taken file once every fact of it is durable: writes its rejections
    /// (parse errors plus `outcomes` that were refused, one per fact in order) as
    /// "file:line: reason" lines into the rejected area, then renames the file into the
    /// done area (a file that is not a fact file, or was refused unread, goes to the
    /// rejected area) and fsyncs both directories. When that fails, the file stays in the
    /// inbox and `WorkerError.sourceRetry` says when it is tried again.
    private func complete(_ taken: Taken, _ batch: SourceBatch, outcomes: [FactOutcome]) throws -> SourceBatch.Completion {
        let name = taken.name
        let path = directory + "/" + name
        var rejections = batch.rejections
        for (fact, outcome) in zip(batch.facts, outcomes) {
            if let why = OutcomeSummary.refusal(outcome) {
                rejections.append(FactRejection(file: path, line: fact.line, reason: .refused(why)))
            }
        }
        rejections.sort { $0.line < $1.line }
        let sides: SideFiles
        do {
            sides = try moveAside(taken, rejections: rejections)
        } catch {
            throw retryLater(name, error)
        }
        inFlight.remove(name)
        retries[name] = nil
        let report = InboxFileReport(name: name, facts: batch.facts.count, counts: OutcomeSummary(outcomes),
                                     rejections: rejections, movedTo: sides.destination,
                                     rejectionsFile: rejections.isEmpty ? nil : sides.rejections)
        return SourceBatch.Completion(rejections: rejections, keptIn: report.rejectionsFile, file: report)
    }

    /// Writes the rejections (and the rejected lines) of a taken file, then renames it into
    /// the done or rejected area. The side files of a failed earlier attempt are reused, so
    /// that retries do not pile up copies.
    private func moveAside(_ taken: Taken, rejections: [FactRejection]) throws -> SideFiles {
        let name = taken.name
        let path = directory + "/" + name
        let area = taken.isFactFile ? doneDirectory : rejectedDirectory
        var sides: SideFiles
        if let earlier = retries[name]?.sideFiles, FileSystem.parent(of: earlier.destination) == area,
           !FileSystem.entryExists(earlier.destination) {
            sides = earlier
        } else if !taken.isFactFile {
            let names = SideFileName.unique(in: rejectedDirectory, name, suffixes: ["", ".rejections"])
            sides = SideFiles(destination: names[0], rejections: names[1], lines: nil)
        } else {
            let done = SideFileName.unique(in: doneDirectory, name, suffixes: [""])
            let names = SideFileName.unique(in: rejectedDirectory, name, suffixes: [".rejections", ""])
            sides = SideFiles(destination: done[0], rejections: names[0], lines: FactFormat(path: name) == .json ? nil : names[1])
        }
        retries[name, default: Retry(delay: 0, notBefore: 0)].sideFiles = sides
        if !rejections.isEmpty {
            try FileSystem.atomicReplace(sides.rejections, with: Array(rejections.map { $0.description + "\n" }.joined().utf8))
            // For line formats, the rejected lines themselves too, in the file's own format,
            // so that they can be fixed and dropped into the inbox again. They are copied from
            // the bytes that were parsed, not read again: the file may have been replaced since.
            let wanted = Set(rejections.map(\.line).filter { $0 > 0 })
            if let target = sides.lines, !wanted.isEmpty, let bytes = taken.lines {
                var lines: [ArraySlice<UInt8>] = []
                for (i, line) in bytes.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated()
                where wanted.contains(i + 1) {
                    lines.append(line)
                }
                if !lines.isEmpty { try FileSystem.atomicReplace(target, with: Array(lines.joined(separator: [0x0A])) + [0x0A]) }
            }
        }
        try FileSystem.rename(path, to: sides.destination)
        try FileSystem.syncDirectory(FileSystem.parent(of: sides.destination))
        try FileSystem.syncDirectory(directory)
        return sides
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
