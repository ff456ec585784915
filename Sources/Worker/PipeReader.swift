// A named pipe (FIFO) of fact lines, as written by `cat`, `tail -f` or a feed converter.
// Opened O_RDONLY | O_NONBLOCK so that the worker never blocks waiting for a writer; when
// the last writer closes (read returns 0), the pipe is closed and reopened, so the next
// writer is picked up (on Linux a freshly opened FIFO without writers does not poll as
// hung up, so there is no busy loop).
import Glibc
import Posix
import Storage

public final class PipeReader: @unchecked Sendable {
    public let path: String
    private var fd: FileDescriptor
    private var buffer: SourceLineBuffer
    /// How many times a writer closed and the pipe was reopened.
    public private(set) var reopenCount = 0
    /// Where the pipe's rejected lines are kept (appended when their batch completes, after
    /// its time step); nil keeps them only in the step's report.
    public var rejectionLog: RejectionLog?

    /// Opens the FIFO at `path`, creating it (mode 0600) when absent.
    public init(path: String, parser: FactParser = FactParser(sourceKind: .pipe), create: Bool = true) throws {
        self.path = path
        if create { try FileSystem.makeFIFO(path) }
        let st = try FileSystem.status(path)
        guard (st.st_mode & S_IFMT) == S_IFIFO else {
            throw PosixError(call: "open", path: path, errno: Errno(rawValue: ENOTSUP))
        }
        fd = try FileDescriptor.open(path, O_RDONLY | O_NONBLOCK)
        buffer = SourceLineBuffer(name: path, parser: parser)
    }

    /// Bytes read per `readAvailable` call at most, so that a fast writer cannot hold up
    /// the other sources; the rest waits for the next call.
    public var maximumBytesPerCall = 4 * 1024 * 1024

    /// The descriptor to poll for `Poll.readable`. Changes after a reopen.
    public var descriptor: Int32 { fd.rawValue }

    /// Reads everything available now without blocking; parses the complete lines. On end
    /// of file (the writer closed) the last partial line is parsed and the pipe reopened.
    public func readAvailable() throws -> ParseResult {
        let (result, endOfFile) = try buffer.read(from: fd, budget: maximumBytesPerCall, pollFirst: false)
        if endOfFile { try reopen() }
        return result
    }

    /// `readAvailable` as a batch for the time-step committer (nil when nothing arrived);
    /// its rejections go to `rejectionLog` when it completes.
    public func take() throws -> SourceBatch? {
        let r = try readAvailable()
        guard !r.facts.isEmpty || !r.rejections.isEmpty else { return nil }
        return .streamLines(.pipe(path), r, rejectionLog: { [self] in rejectionLog })
    }

    /// Waits up to `timeoutMilliseconds` for data (or a writer closing); true when there is
    /// something to read.
    public func wait(timeoutMilliseconds: Int32) throws -> Bool {
        let r = try Poll.wait([(fd.rawValue, Poll.readable)], timeoutMilliseconds: timeoutMilliseconds)
        return r[0] & (Poll.readable | Poll.hangUp | Poll.error) != 0
    }

    private func reopen() throws {
        // The path may have been replaced meanwhile: only ever reopen a FIFO (a regular
        // file there would be read again at every end of file).
        let st = try FileSystem.status(path)
        guard (st.st_mode & S_IFMT) == S_IFIFO else {
            throw PosixError(call: "open", path: path, errno: Errno(rawValue: ENOTSUP))
        }
        let next = try FileDescriptor.open(path, O_RDONLY | O_NONBLOCK)
        try fd.close()
        fd = next
        reopenCount += 1
    }

    public func close() throws { try fd.close() }
}
