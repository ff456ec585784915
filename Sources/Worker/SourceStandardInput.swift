// Standard input as a fact stream: same line formats as a pipe; end of file ends it.
import Glibc
import Posix
import Storage

public final class SourceStandardInput: @unchecked Sendable {
    private let fd: FileDescriptor
    private var buffer: SourceLineBuffer
    public private(set) var finished = false

    /// Reads from descriptor `descriptor` (0 by default; tests pass a pipe). Sets it
    /// non-blocking.
    public init(descriptor: Int32 = 0, parser: FactParser = FactParser(sourceKind: .stdin)) throws {
        fd = FileDescriptor(adopting: dup(descriptor), path: "<stdin>")
        guard fd.rawValue >= 0 else { throw PosixError(call: "dup", path: "<stdin>", errno: .current) }
        try fd.setNonBlocking(true)
        buffer = SourceLineBuffer(name: "<stdin>", parser: parser)
    }

    public var descriptor: Int32 { fd.rawValue }

    /// Reads what is available now; after end of file, `finished` is true.
    public func readAvailable() throws -> ParseResult {
        var result = ParseResult()
        guard !finished else { return result }
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n: Int
            do {
                n = try chunk.withUnsafeMutableBytes { try fd.read(into: $0) }
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
            let part = buffer.feed(chunk[0..<n])
            result.facts += part.facts
            result.rejections += part.rejections
        }
    }
}
