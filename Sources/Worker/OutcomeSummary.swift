// How the operations of a commit came out, counted once: the one tally of `FactOutcome`s
// behind a time step's report (the worker's log and metrics, `recipe ingest`'s step lines),
// an inbox file's report and the socket's `add`/`retract` metrics. Also the one wording of
// why a refused operation stored nothing, as its rejection says it.
import Storage

public struct OutcomeSummary: Sendable, Equatable {
    /// Stored as new facts.
    public var added = 0
    /// Stored, replacing a live fact.
    public var superseded = 0
    /// Already live: nothing stored.
    public var duplicates = 0
    /// Live facts retracted.
    public var retracted = 0
    /// Retractions that found no live fact and operations the repository found invalid:
    /// nothing stored, each one a rejection (`refusal`).
    public var refused = 0

    public init() {}

    public init<S: Sequence>(_ outcomes: S) where S.Element == FactOutcome {
        for o in outcomes { count(o) }
    }

    /// Operations that changed the repository (`FactOutcome.isStored`): added, superseded,
    /// retracted.
    public var stored: Int { added + superseded + retracted }

    /// Every operation counted.
    public var operations: Int { stored + duplicates + refused }

    public mutating func count(_ outcome: FactOutcome) {
        switch outcome {
        case .added: added += 1
        case .superseded: superseded += 1
        case .duplicate: duplicates += 1
        case .retracted: retracted += 1
        case .notFound, .invalid: refused += 1
        }
    }

    public static func += (total: inout OutcomeSummary, more: OutcomeSummary) {
        total.added += more.added
        total.superseded += more.superseded
        total.duplicates += more.duplicates
        total.retracted += more.retracted
        total.refused += more.refused
    }

    /// Why a refused operation stored nothing (the reason of its `.refused` rejection); nil
    /// for the outcomes that are not refusals.
    public static func refusal(_ outcome: FactOutcome) -> String? {
        switch outcome {
        case .notFound(let what): return "no live fact \(what) to retract"
        case .invalid(let why): return why
        case .added, .superseded, .duplicate, .retracted: return nil
        }
    }
}
