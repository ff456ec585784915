// Standard input as a fact stream: same line formats as a pipe; end of file ends it.
import Glibc
import Posix
import Storage

public final class SourceStandardInput: @unchecked Sendable {
    private let fd: FileDescriptor
    private var buffer: SourceLineBuffer
    public private(set) var finished = false

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
        var result = ParseResult()
        guard !finished else { return result }
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var budget = maximumBytesPerCall
        while budget > 0 {
            let ready = try Poll.wait([(fd.rawValue, Poll.readable)], timeoutMilliseconds: 0)
            guard ready[0] != 0 else { return result }
            let n: Int
            do {
                n = try chunk.withUnsafeMutableBytes { try fd.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[..<min($0.count, budget)])) }
            } catch let e as PosixError where e.errno == .wouldBlock {
                return result
            }
            if n == 0 {
                let last = buffer.finish()
                result.facts += last.facts
                result.rejections += last.rejections
                finished = true
                return result
            }
            budget -= n
            let part = buffer.feed(chunk[0..<n])
            result.facts += part.facts
            result.rejections += part.rejections
        }
        return result
    }
}
