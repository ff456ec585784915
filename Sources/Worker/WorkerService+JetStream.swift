// The JetStream source of a worker's config, set up at start: placed after the highest
// stream sequence the repository holds, with its rejections kept beside the pipes'. The
// first connection is tried here so that a wrong address, credentials or stream name is
// in the log at start, with its reason; the worker starts either way (the socket answers
// from the repository) and the source keeps retrying with a growing pause.
import Posix
import Storage

extension WorkerService {
    public static func jetStreamSource(_ c: WorkerConfig, repository: Repository, state: WorkerState) throws -> JetStreamSource? {
        guard c.jetstream.enabled else { return nil }
        let maxLine = max(c.limits.maxFactBytes * 4, 1024)
        let applied = JetStreamSource.appliedThrough(stream: c.jetstream.stream, in: repository)
        let source: JetStreamSource
        do {
            source = try JetStreamSource(config: c.jetstream, parser: FactParser(maximumLineBytes: maxLine, sourceKind: .pipe),
                                         appliedThrough: applied, log: state.log, status: state.jetstream)
        } catch { throw WorkerError.source(path: "jetstream", reason: "\(error)") }
        let dir = c.resolve(c.pipeRejections)
        do { try FileSystem.makeDirectory(dir, mode: 0o750) } catch { throw WorkerError.source(path: dir, reason: "\(error)") }
        source.rejectionLog = RejectionLog(path: dir + "/" + RejectionLog.fileName(forSource: "jetstream-" + c.jetstream.stream))
        _ = source.take()  // the first connection, now: its outcome is logged at start
        return source
    }
}
