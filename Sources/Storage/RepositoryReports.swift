// What the repository reports: per commit, at open, on compaction, and its counters.

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
    /// A torn tail cut from the log (kept in torn/): what a crash during an append leaves.
    public var tornTail: TornTail?
    /// Set when a log damaged in the middle was salvaged (`RepositoryOptions.salvageDamagedLog`).
    public var salvage: LogSalvage?
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

public struct LogCompactionReport: Sendable {
    public let recordsBefore: Int
    public let recordsAfter: Int
    public let bytesBefore: Int
    public let bytesAfter: Int
    /// The old log, kept under this name (nil when not kept).
    public let archive: String?
}
