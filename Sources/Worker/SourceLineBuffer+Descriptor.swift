// Feeding a `SourceLineBuffer` from a file descriptor: the read loop the named pipes and
// standard input share. They differ only in how a read is kept from blocking (a FIFO is
// opened O_NONBLOCK; standard input is polled before each read, see
// `SourceStandardInput`) and in what end of file means (reopen vs. finished), which the
// callers decide.
import Posix

extension SourceLineBuffer {
    /// Reads what `fd` has now in 64 KiB bites, at most `budget` bytes, and parses the
    /// complete lines. At end of file (read returns 0) the last partial line is parsed too
    /// and `endOfFile` is true. Stops early, without error, when a read would block
    /// (EAGAIN) or, with `pollFirst`, when poll(2) reports nothing to read.
    mutating func read(from fd: FileDescriptor, budget: Int, pollFirst: Bool) throws -> (result: ParseResult, endOfFile: Bool) {
        var result = ParseResult()
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var budget = budget
        while budget > 0 {
            if pollFirst {
                let ready = try Poll.wait([(fd.rawValue, Poll.readable)], timeoutMilliseconds: 0)
                guard ready[0] != 0 else { return (result, false) }
            }
            let n: Int
            do {
                n = try chunk.withUnsafeMutableBytes { try fd.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[..<min($0.count, budget)])) }
            } catch let e as PosixError where e.errno == .wouldBlock {
                return (result, false)
            }
            if n == 0 {
                result.append(finish())
                return (result, true)
            }
            budget -= n
            result.append(feed(chunk[0..<n]))
        }
        return (result, false)
    }
}

extension ParseResult {
    mutating func append(_ other: ParseResult) {
        facts += other.facts
        rejections += other.rejections
    }
}
