// What callers hand to `Repository.commit` (one operation each), and what became of each.

/// One requested change of a time step.
public enum FactOperation: Sendable, Equatable {
    /// Add a fact. `statement` is required; prompt/target/subject enable supersession
    /// (same subject + prompt, new target); `id` is derived from the text when nil.
    case add(statement: String, prompt: String? = nil, target: String? = nil, subject: String? = nil,
             id: String? = nil, source: FactSource = .api)
    /// Retract the live fact with this id.
    case retractID(String, source: FactSource = .api)
    /// Retract the live fact whose normalized statement equals this one.
    case retractStatement(String, source: FactSource = .api)
}

/// What became of one operation.
public enum FactOutcome: Sendable, Equatable {
    /// Stored as a new fact (log sequence of its add record).
    case added(id: String, sequence: UInt64)
    /// Stored, and it replaced the live fact `replaced` (same subject + prompt, or same id).
    case superseded(id: String, sequence: UInt64, replaced: String)
    /// The same normalized statement is already live under `existing`; nothing stored.
    case duplicate(existing: String)
    /// The fact was retracted.
    case retracted(id: String)
    /// No live fact matched the retraction.
    case notFound(String)
    /// The operation was invalid (empty statement, over-long field).
    case invalid(String)

    public var isStored: Bool {
        switch self {
        case .added, .superseded, .retracted: return true
        default: return false
        }
    }
}
