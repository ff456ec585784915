// Why a line of a fact file or stream was not accepted. Every rejection names the file
// (or pipe) and the 1-based line, so that the rejected area can be read like a compiler log.
import Storage

public enum RejectionReason: Sendable, Equatable, CustomStringConvertible {
    case malformedJSON(String)
    case notAnObject(found: String)
    case missingField(String)
    case wrongType(field: String, expected: String)
    case emptyField(String)
    case invalidUTF8(offset: Int)
    case lineTooLong(bytes: Int, limit: Int)
    case unknownOperation(String)
    case trailingContent
    /// The repository refused it (e.g. an over-long field); carries its message.
    case refused(String)

    public var description: String {
        switch self {
        case .malformedJSON(let m): return "malformed JSON: \(m)"
        case .notAnObject(let found): return "expected a JSON object, found \(found)"
        case .missingField(let f): return "missing field \"\(f)\""
        case .wrongType(let f, let e): return "field \"\(f)\" must be \(e)"
        case .emptyField(let f): return "field \"\(f)\" is empty"
        case .invalidUTF8(let o): return "invalid UTF-8 at byte \(o) of the line"
        case .lineTooLong(let b, let l): return "line of \(b) bytes exceeds the limit of \(l)"
        case .unknownOperation(let op): return "unknown op \"\(op)\" (expected \"add\" or \"retract\")"
        case .trailingContent: return "content after the top-level JSON value"
        case .refused(let m): return "refused: \(m)"
        }
    }
}

public struct FactRejection: Error, Sendable, Equatable, CustomStringConvertible {
    public let file: String
    public let line: Int
    public let reason: RejectionReason
    /// The rejected line itself (without its newline; an over-long line's first
    /// `maximumLineBytes`), for streams only: a pipe cannot be read twice, so this is what
    /// its rejected-lines file keeps. Nil for inbox files, whose lines are copied out of the
    /// file when it is moved aside.
    public let text: [UInt8]?

    public init(file: String, line: Int, reason: RejectionReason, text: [UInt8]? = nil) {
        self.file = file
        self.line = line
        self.reason = reason
        self.text = text
    }

    /// "file:line: reason", one line, as written into the rejected area.
    public var description: String { "\(file):\(line): \(reason)" }
}

/// One accepted fact or retraction, with the line it came from.
public struct ParsedFact: Sendable, Equatable {
    public let line: Int
    public let operation: FactOperation
    /// The line itself, for streams only (see `FactRejection.text`): kept in case the
    /// repository refuses the operation.
    public let text: [UInt8]?

    public init(line: Int, operation: FactOperation, text: [UInt8]? = nil) {
        self.line = line
        self.operation = operation
        self.text = text
    }
}

public struct ParseResult: Sendable, Equatable {
    public var facts: [ParsedFact] = []
    public var rejections: [FactRejection] = []
    public init(facts: [ParsedFact] = [], rejections: [FactRejection] = []) {
        self.facts = facts
        self.rejections = rejections
    }
}
