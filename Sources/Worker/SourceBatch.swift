// What a source hands to the worker's time-step batcher: the facts of one file, or the
// lines a pipe or standard input delivered since the last poll, with their rejections.
import Storage

public struct SourceBatch: Sendable, Equatable {
    public enum Origin: Sendable, Equatable, CustomStringConvertible {
        /// A file of an inbox: complete it with `InboxWatcher.complete` after the commit.
        case file(inbox: String, name: String)
        case pipe(String)
        case standardInput
        /// Messages of a JetStream stream (`JetStreamSource`): each fact's line is its
        /// stream sequence; acknowledged by `SourcePoller.complete` after the commit.
        case jetstream(stream: String)

        public var description: String {
            switch self {
            case .file(let inbox, let name): return inbox + "/" + name
            case .pipe(let path): return path
            case .standardInput: return "<stdin>"
            case .jetstream(let stream): return "jetstream:" + stream
            }
        }
    }

    public let origin: Origin
    public let facts: [ParsedFact]
    public let rejections: [FactRejection]

    public init(origin: Origin, facts: [ParsedFact], rejections: [FactRejection]) {
        self.origin = origin
        self.facts = facts
        self.rejections = rejections
    }

    public var operations: [FactOperation] { facts.map(\.operation) }
}
