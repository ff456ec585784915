// Turns a byte stream (a FIFO, standard input, a socket) into parsed facts line by line:
// bytes are buffered until a newline, lines longer than the limit are rejected and skipped
// up to their newline without being buffered, and a last line without a newline counts
// once the writer has closed.
import Storage

public struct SourceLineBuffer: Sendable {
    public let name: String
    public var parser: FactParser
    public var format: FactFormat
    private var pending: [UInt8] = []
    /// Bytes of an over-long line seen so far, while it is being skipped.
    private var skipping: Int?
    /// The first `maximumLineBytes` of the line being skipped, for its rejection.
    private var skippedStart: [UInt8] = []
    /// Lines seen so far (the next line is `lines + 1`).
    public private(set) var lines = 0

    public init(name: String, parser: FactParser, format: FactFormat = .mixedLines) {
        self.name = name
        self.parser = parser
        self.format = format
    }

    /// Feeds bytes; returns the facts and rejections of every line they completed.
    public mutating func feed(_ bytes: some Collection<UInt8>) -> ParseResult {
        var result = ParseResult()
        var rest = bytes[...]
        while !rest.isEmpty {
            if let nl = rest.firstIndex(of: 0x0A) {
                let part = rest[..<nl]
                rest = rest[rest.index(after: nl)...]
                if let skipped = skipping {
                    lines += 1
                    result.rejections.append(tooLong(skipped + part.count))
                    skipping = nil
                } else {
                    pending.append(contentsOf: part)
                    finishLine(into: &result)
                }
            } else {
                if let skipped = skipping {
                    skipping = skipped + rest.count
                } else {
                    pending.append(contentsOf: rest)
                    if pending.count > parser.maximumLineBytes + 1 {  // +1: a CR before the LF
                        skipping = pending.count
                        skippedStart = Array(pending.prefix(parser.maximumLineBytes))
                        pending.removeAll(keepingCapacity: false)
                    }
                }
                rest = rest[rest.endIndex...]
            }
        }
        return result
    }

    /// The writer closed: a last line without newline is complete.
    public mutating func finish() -> ParseResult {
        var result = ParseResult()
        if let skipped = skipping {
            lines += 1
            result.rejections.append(tooLong(skipped))
            skipping = nil
        } else if !pending.isEmpty {
            finishLine(into: &result)
        }
        return result
    }

    private mutating func finishLine(into result: inout ParseResult) {
        lines += 1
        // The line as its writer sent it (without a CR before the LF), cut like a skipped
        // one so that the text does not depend on how the bytes arrived.
        var text = pending[...]
        if text.last == 0x0D { text = text.dropLast() }
        switch parser.parseLine(pending[...], format: format, file: name, line: lines) {
        case .success(let op?): result.facts.append(ParsedFact(line: lines, operation: op, text: Array(text)))
        case .success(nil): break
        case .failure(let r):
            result.rejections.append(FactRejection(file: r.file, line: r.line, reason: r.reason,
                                                   text: Array(text.prefix(parser.maximumLineBytes))))
        }
        pending.removeAll(keepingCapacity: true)
    }

    private mutating func tooLong(_ bytes: Int) -> FactRejection {
        defer { skippedStart = [] }
        return FactRejection(file: name, line: lines, reason: .lineTooLong(bytes: bytes, limit: parser.maximumLineBytes),
                             text: skippedStart)
    }
}
