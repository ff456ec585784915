// What a source hands to the time-step committer: the facts of one inbox file, or the lines
// a pipe, standard input or a JetStream stream delivered since the last poll, with their
// rejections, and the way back to the source that produced them. The committer calls
// `complete` once every fact of the batch is durable (an inbox file moves aside, a stream's
// messages are acknowledged, rejected stream lines are written down), or `release` when the
// commit failed (an inbox file is offered again; stream lines, which cannot be read twice,
// stay with the committer for its next step). Nothing is acknowledged before its commit.
import Storage

public struct SourceBatch: Sendable {
    public enum Origin: Sendable, Equatable, CustomStringConvertible {
        /// A file of an inbox (`InboxWatcher`).
        case file(inbox: String, name: String)
        case pipe(String)
        case standardInput
        /// Messages of a JetStream stream (`JetStreamSource`): each fact's line is its
        /// stream sequence.
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

    /// What completing a batch did at its source.
    public struct Completion: Sendable {
        /// The batch's parse rejections and its refused operations (an inbox file's in line
        /// order).
        public var rejections: [FactRejection]
        /// Where they are written down: an inbox file's `.rejections` file, a stream's
        /// rejection log; nil when nowhere (none, or the source keeps no log).
        public var keptIn: String?
        /// An inbox file's report (it has moved aside); nil for stream lines.
        public var file: InboxFileReport?
        /// What failed without undoing the completion (a stream's rejection log could not be
        /// written: the rejections are still in the report).
        public var failure: String?

        public init(rejections: [FactRejection] = [], keptIn: String? = nil, file: InboxFileReport? = nil, failure: String? = nil) {
            self.rejections = rejections
            self.keptIn = keptIn
            self.file = file
            self.failure = failure
        }
    }

    public let origin: Origin
    public let facts: [ParsedFact]
    public let rejections: [FactRejection]
    private let finish: @Sendable (SourceBatch, [FactOutcome]) throws -> Completion
    private let giveBack: @Sendable () -> Bool

    /// - Parameters:
    ///   - complete: the source's side of `complete` (the batch, one outcome per fact).
    ///   - release: the source's side of `release`: true when it offers the batch again.
    public init(origin: Origin, facts: [ParsedFact], rejections: [FactRejection],
                complete: @escaping @Sendable (SourceBatch, [FactOutcome]) throws -> Completion,
                release: @escaping @Sendable () -> Bool) {
        self.origin = origin
        self.facts = facts
        self.rejections = rejections
        finish = complete
        giveBack = release
    }

    public var operations: [FactOperation] { facts.map(\.operation) }

    /// Hands the batch back to its source once every one of its facts is durable;
    /// `outcomes` are the repository's, one per fact in order. Throws when the source could
    /// not finish it (an inbox file that could not be moved aside is offered again after its
    /// back-off: `WorkerError.sourceRetry`).
    public func complete(outcomes: [FactOutcome]) throws -> Completion {
        precondition(outcomes.count == facts.count, "one outcome per fact of \(origin)")
        return try finish(self, outcomes)
    }

    /// The commit holding the batch failed: gives it back to its source. True when the source
    /// offers it again itself (an inbox file, at a later poll); false when it cannot (lines
    /// read from a stream exist nowhere else): the caller keeps the batch and commits it again.
    public func release() -> Bool { giveBack() }
}
