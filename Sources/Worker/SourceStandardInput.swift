// Standard input as a fact stream: same line formats as a pipe; end of file ends it.
import Glibc
import Posix
import Storage

public final class SourceStandardInput: @unchecked Sendable {
    private let fd: FileDescriptor
    private var buffer: SourceLineBuffer
    public private(set) var finished = false
    /// Where rejected lines are kept, as for a pipe (`PipeReader.rejectionLog`).
    public var rejectionLog: RejectionLog?

    /// Reads from a duplicate of `descriptor` (0 by default; tests pass a pipe). The
    /// descriptor is NOT made non-blocking: O_NONBLOCK belongs to the open file description,
    /// which standard input shares with the parent shell's terminal. Instead each read
    /// happens only after poll(2) reported the descriptor readable, so it cannot block.
    public init(descriptor: Int32 = 0, parser: FactParser = FactParser(sourceKind: .stdin)) throws {
        fd = FileDescriptor(adopting: dup(descriptor), path: "<stdin>")
        guard fd.rawValue >= 0 else { throw PosixError(call: "dup", path: "<stdin>", errno: .current) }
        buffer = SourceLineBuffer(name: "<stdin>", parser: parser)
    }

    /// Bytes read per `readAvailable` call at most, so that a fast writer (or a large file
    /// on standard input) cannot hold up the other sources; the rest waits for the next call.
    public var maximumBytesPerCall = 4 * 1024 * 1024

    public var descriptor: Int32 { fd.rawValue }

    /// Reads what is available now; after end of file, `finished` is true.
    public func readAvailable() throws -> ParseResult {
        guard !finished else { return ParseResult() }
        let (result, endOfFile) = try buffer.read(from: fd, budget: maximumBytesPerCall, pollFirst: true)
        if endOfFile { finished = true }
        return result
    }

    /// `readAvailable` as a batch for the time-step committer (nil when nothing arrived);
    /// its rejections go to `rejectionLog` when it completes.
    public func take() throws -> SourceBatch? {
        let r = try readAvailable()
        guard !r.facts.isEmpty || !r.rejections.isEmpty else { return nil }
        return .streamLines(.standardInput, r, rejectionLog: { [self] in rejectionLog })
    }
}
