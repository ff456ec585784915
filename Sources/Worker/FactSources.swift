// Every fact source of a worker (inboxes, named pipes, standard input, a JetStream stream),
// waited on with one poll(2) (the inboxes' inotify descriptors, the FIFOs, standard input,
// the stream's connection); `poll` returns what is ready as batches. Each batch carries the
// way back to the source that produced it (`SourceBatch.complete`, `release`): the
// `TimeStepCommitter` commits the batches of a time step together and only then completes
// each, so that inbox files move aside and stream messages are acknowledged only once
// their facts are durable.
import Posix
import Storage

public final class FactSources: @unchecked Sendable {
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
    /// one batch per complete inbox file, one per pipe, stdin or stream that delivered lines.
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
            if let b = try pipe.take() { batches.append(b) }
        }
        if let stdin = standardInput, !stdin.finished, let b = try stdin.take() { batches.append(b) }
        if let b = jetstream?.take() { batches.append(b) }
        return (batches, failures)
    }
}
