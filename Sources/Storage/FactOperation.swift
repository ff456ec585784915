// What callers hand to `Repository.commit` and what they get back.
import Foundation

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

public struct CommitReport: Sendable {
    /// The time step this commit became (unchanged when nothing was stored).
    public let timeStep: UInt64
    /// One outcome per operation, in order.
    public let outcomes: [FactOutcome]
    /// Log sequences written, empty when nothing was stored.
    public let sequences: ClosedRange<UInt64>?
    public let rowsWritten: Int
    /// Failures after the log was durable (msync, manifest). The commit is acknowledged:
    /// recovery rebuilds whatever these left behind from the log.
    public let warnings: [String]
}

/// Progress of a re-encode or rebuild at open: `done` of `total` facts.
public struct RebuildProgress: Sendable {
    public let done: Int
    public let total: Int
}

/// What `Repository.open` found and did.
public struct OpenReport: Sendable {
    public var recordsReplayed = 0
    /// Facts encoded because their rows were not yet applied.
    public var rowsApplied = 0
    /// Set when the whole matrix generation was rebuilt from the log, with the reason
    /// (new repository, fingerprint or dimensions changed, manifest corrupt, file missing...).
    public var rebuilt: String?
    public var tornTail: TornTail?
    /// Log records whose checksum was good but which did not apply (kept in the log).
    public var skippedRecords: [String] = []
    public var liveFacts = 0
    /// Failures that did not stop the open (msync, manifest, removing stale files).
    public var warnings: [String] = []
}

public struct RepositoryStats: Sendable, Codable, Equatable {
    public let liveFacts: Int
    /// Matrix rows in use, sentinel included.
    public let rows: Int
    /// Rows of retracted or superseded facts, reclaimed by `compact()`.
    public let deadRows: Int
    public let timeStep: UInt64
    public let generation: UInt64
    public let logRecords: UInt64
    public let logBytes: Int
    public let keyDimension: Int
    public let promptRows: Int
    public let promptWidth: Int
    public let fingerprint: String
}

public struct CompactionReport: Sendable {
    public let rowsBefore: Int
    public let rowsAfter: Int
    public let generation: UInt64
}

/// Statement normalization shared by the repository and the parsers: Unicode NFC,
/// whitespace runs collapsed to one space, trimmed. Deduplication compares the
/// normalized text case-insensitively.
public enum FactText {
    public static func normalize(_ s: String) -> String {
        let nfc = s.precomposedStringWithCanonicalMapping
        return nfc.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    }

    /// The deduplication key of a statement (normalized, lower-cased).
    public static func key(_ s: String) -> String { normalize(s).lowercased() }

    /// The supersession slot of a fact with a prompt: subject + prompt, normalized.
    public static func slot(subject: String?, prompt: String) -> String {
        key(subject ?? "") + "\u{1F}" + key(prompt)
    }

    /// `key` of text that is already normalized (what the log stores): lower-casing only.
    /// NFC normalization is the expensive part, and replay at open does this per record.
    static func storedKey(_ normalized: String) -> String { normalized.lowercased() }

    /// `slot` of a stored (normalized) subject and prompt.
    static func storedSlot(subject: String?, prompt: String) -> String {
        (subject ?? "").lowercased() + "\u{1F}" + prompt.lowercased()
    }

    /// The id of a fact given without one: "f" + FNV-1a 64 of the dedup key, 16 hex digits.
    public static func derivedID(_ s: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in key(s).utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        let hex = String(h, radix: 16)
        return "f" + String(repeating: "0", count: 16 - hex.count) + hex
    }
}
