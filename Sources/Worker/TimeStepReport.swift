// What one `TimeStepCommitter.step` did: the time steps it committed, how their operations
// came out, the rejections and where they are written down, the inbox files completed, and
// what failed without stopping it. The worker logs it; `recipe ingest` prints it as the
// step's acknowledgement line.
import Storage

public struct TimeStepReport: Sendable {
    /// Time steps committed by this call (several when a batch exceeded the policy).
    public var timeSteps: [UInt64] = []
    public var batches = 0
    /// Every operation's outcome, in the order of the committed operations (what a caller
    /// acknowledges per fact id once the step has returned).
    public var outcomes: [FactOutcome] = []
    /// Parse rejections and refused operations, with file/pipe and line.
    public var rejections: [FactRejection] = []
    /// Where this step's rejections are written down: inbox `.rejections` files and the
    /// rejection logs of pipes, stdin and streams (each once).
    public var rejectionFiles: [String] = []
    /// Inbox files completed (moved to the done or rejected area).
    public var files: [InboxFileReport] = []
    /// Warnings of the commits (msync/manifest failures after the log fsync).
    public var warnings: [String] = []
    /// Sources that could not be read or completed this round.
    public var failures: [String] = []
    public init() {}

    /// How the operations came out (stored, duplicates, refused, ...).
    public var counts: OutcomeSummary { OutcomeSummary(outcomes) }

    /// Adds what a later step did (a caller summing several steps).
    public mutating func append(_ later: TimeStepReport) {
        timeSteps += later.timeSteps
        batches += later.batches
        outcomes += later.outcomes
        rejections += later.rejections
        for path in later.rejectionFiles { keptIn(path) }
        files += later.files
        warnings += later.warnings
        failures += later.failures
    }

    mutating func keptIn(_ path: String) {
        if !rejectionFiles.contains(path) { rejectionFiles.append(path) }
    }
}
