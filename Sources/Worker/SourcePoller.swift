// Waits on every fact source at once (inotify descriptors of the inboxes, the FIFOs,
// standard input) with one poll(2), and returns what is ready as batches. The worker
// commits the batches of a time step together, then calls `complete` for each, so that
// inbox files are moved aside only after their facts are durable.
import Posix
import Storage

public final class SourcePoller: @unchecked Sendable {
    public let inboxes: [InboxWatcher]
    public let pipes: [PipeReader]
    public let standardInput: SourceStandardInput?
    /// A JetStream stream (`WorkerService.jetStreamSource`), polled with the others.
    public var jetstream: JetStreamSource?
    /// Longest wait when an inbox has no inotify descriptor (polling fallback).
    public var pollingIntervalMilliseconds: Int32 = 500

    public init(inboxes: [InboxWatcher] = [], pipes: [PipeReader] = [], standardInput: SourceStandardInput? = nil) {
        self.inboxes = inboxes
        self.pipes = pipes
        self.standardInput = standardInput
    }

    /// Waits up to `timeoutMilliseconds` for any source, then collects everything ready:
    /// one batch per complete inbox file, one per pipe or stdin that delivered lines.
    /// A file that cannot be read this time is reported in `failures` and left to its
    /// back-off (see `InboxWatcher.take`).
    public func poll(timeoutMilliseconds: Int32) throws -> (batches: [SourceBatch], failures: [(String, Error)]) {
        var fds: [(fd: Int32, events: Int16)] = []
        for inbox in inboxes { if let fd = inbox.descriptor { fds.append((fd, Poll.readable)) } }
        for pipe in pipes { fds.append((pipe.descriptor, Poll.readable)) }
        if let stdin = standardInput, !stdin.finished { fds.append((stdin.descriptor, Poll.readable)) }
        var timeout = timeoutMilliseconds
        if let js = jetstream {
            if let fd = js.descriptor { fds.append((fd, Poll.readable)) }
            let limit = js.waitLimitMilliseconds()
            timeout = timeout < 0 ? limit : min(timeout, limit)
        }
        if inboxes.contains(where: { !$0.usesInotify }) {
            timeout = timeout < 0 ? pollingIntervalMilliseconds : min(timeout, pollingIntervalMilliseconds)
        }
        _ = try Poll.wait(fds, timeoutMilliseconds: timeout)

        var batches: [SourceBatch] = []
        var failures: [(String, Error)] = []
        for inbox in inboxes {
            for name in try inbox.readyFiles() {
                do { batches.append(try inbox.take(name)) } catch { failures.append((inbox.directory + "/" + name, error)) }
            }
        }
        for pipe in pipes {
            let r = try pipe.readAvailable()
            if !r.facts.isEmpty || !r.rejections.isEmpty {
                batches.append(SourceBatch(origin: .pipe(pipe.path), facts: r.facts, rejections: r.rejections))
            }
        }
        if let stdin = standardInput, !stdin.finished {
            let r = try stdin.readAvailable()
            if !r.facts.isEmpty || !r.rejections.isEmpty {
                batches.append(SourceBatch(origin: .standardInput, facts: r.facts, rejections: r.rejections))
            }
        }
        if let b = jetstream?.take() { batches.append(b) }
        return (batches, failures)
    }

    /// After the batch's facts are durable: moves an inbox file aside (see
    /// `InboxWatcher.complete`), or acknowledges a stream's messages; for pipes and stdin
    /// there is nothing to do (their rejections go to `keep`).
    public func complete(_ batch: SourceBatch, outcomes: [FactOutcome]) throws -> InboxFileReport? {
        if case .jetstream = batch.origin { jetstream?.complete(batch) }
        guard case .file(let directory, _) = batch.origin else { return nil }
        guard let inbox = inboxes.first(where: { $0.directory == directory }) else {
            throw PosixError(call: "complete", path: directory, errno: .noEntry)
        }
        return try inbox.complete(batch, outcomes: outcomes)
    }

    /// After a pipe or stdin batch's step: appends its rejections (parse errors and refused
    /// operations) to the source's rejection log and fsyncs it. Returns the log's path, nil
    /// when the source keeps none.
    public func keep(_ rejections: [FactRejection], of origin: SourceBatch.Origin) throws -> String? {
        let log: RejectionLog?
        switch origin {
        case .file: return nil
        case .pipe(let path): log = pipes.first { $0.path == path }?.rejectionLog
        case .standardInput: log = standardInput?.rejectionLog
        case .jetstream: log = jetstream?.rejectionLog
        }
        guard let log else { return nil }
        try log.append(rejections)
        return log.path
    }

    /// The commit of a batch failed: inbox files are offered again at the next poll.
    /// (Pipe and stdin lines cannot be re-read: the worker must retry them itself.)
    public func release(_ batch: SourceBatch) {
        guard case .file(let directory, let name) = batch.origin else { return }
        inboxes.first { $0.directory == directory }?.release(name)
    }
}
