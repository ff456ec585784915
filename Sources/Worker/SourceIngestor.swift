// The ingestion loop of the worker, one time step per call: wait for the sources, gather
// batches until the step is full or its collection window has passed, commit them in one
// `Repository.commit` (one encode call, one log fsync), then complete each batch (inbox
// files move aside only now, when their facts are durable). When the commit fails, inbox
// files are released (offered again) and pipe/stdin lines are kept for the next step,
// since they cannot be read twice. For the same reason a stream's rejected lines are
// written to its rejection log at the step (an inbox file's go to its rejected area).
import Posix
import Storage

/// When a time step is committed.
public struct TimeStepPolicy: Sendable {
    /// Commit once this many operations are gathered (larger inbox files are split into
    /// several steps and completed after the last).
    public var maximumOperations = 4096
    /// After the first batch arrives, keep gathering this long before committing.
    public var collectMilliseconds: Int32 = 100
    /// Commit every inbox file in time steps of its own (the lines of pipes, stdin and
    /// streams gathered meanwhile share steps), so a file's facts are never in a step
    /// with another file's, and each file's step numbers say when it became durable.
    public var stepPerFile = true
    public init(maximumOperations: Int = 4096, collectMilliseconds: Int32 = 100, stepPerFile: Bool = true) {
        self.maximumOperations = maximumOperations
        self.collectMilliseconds = collectMilliseconds
        self.stepPerFile = stepPerFile
    }
}

public struct IngestReport: Sendable {
    /// Time steps committed by this call (several when a batch exceeded the policy).
    public var timeSteps: [UInt64] = []
    public var batches = 0
    public var stored = 0
    public var duplicates = 0
    /// Parse rejections and refused operations, with file/pipe and line.
    public var rejections: [FactRejection] = []
    /// Where this step's rejections are written down: inbox `.rejections` files and the
    /// rejection logs of pipes and stdin (each once).
    public var rejectionFiles: [String] = []
    /// Inbox files completed (moved to the done or rejected area).
    public var files: [InboxFileReport] = []
    /// Warnings of the commits (msync/manifest failures after the log fsync).
    public var warnings: [String] = []
    /// Sources that could not be read or completed this round.
    public var failures: [String] = []
    /// Every operation's outcome, in the order of the committed operations (what a caller
    /// acknowledges per fact id once the step has returned).
    public var outcomes: [FactOutcome] = []
    public init() {}

    mutating func keptIn(_ path: String) {
        if !rejectionFiles.contains(path) { rejectionFiles.append(path) }
    }
}

public final class SourceIngestor: @unchecked Sendable {
    public let poller: SourcePoller
    public let repository: Repository
    public var policy: TimeStepPolicy
    /// Pipe and stdin batches whose commit failed, retried first at the next step.
    private var carried: [SourceBatch] = []

    public init(poller: SourcePoller, repository: Repository, policy: TimeStepPolicy = TimeStepPolicy()) {
        self.poller = poller
        self.repository = repository
        self.policy = policy
    }

    /// Runs one time step: waits up to `timeoutMilliseconds` for something to ingest;
    /// returns nil when nothing arrived. Throws the commit error after releasing the
    /// batches (nothing is lost: files stay in the inbox, stream lines are carried).
    public func step(timeoutMilliseconds: Int32) throws -> IngestReport? {
        var report = IngestReport()
        var batches = carried
        carried = []
        if batches.isEmpty {
            let first = try poller.poll(timeoutMilliseconds: timeoutMilliseconds)
            batches = first.batches
            report.failures += first.failures.map { "\($0.0): \($0.1)" }
        }
        guard !batches.isEmpty else { return report.failures.isEmpty ? nil : report }
        let deadline = monotonicSeconds() + Double(policy.collectMilliseconds) / 1000
        while batches.reduce(0, { $0 + $1.facts.count }) < policy.maximumOperations {
            let left = Int32(max(0, (deadline - monotonicSeconds()) * 1000))
            if left == 0 { break }
            let more = try poller.poll(timeoutMilliseconds: left)
            batches += more.batches
            report.failures += more.failures.map { "\($0.0): \($0.1)" }
        }
        report.batches = batches.count

        // Commit units in batch order (the outcomes are matched back by position): with
        // `stepPerFile` each inbox file is a unit of its own, the other batches between
        // files share one; each unit is committed in steps of at most maximumOperations.
        var units: [[FactOperation]] = []
        var sharing = false
        for b in batches {
            let own: Bool
            if case .file = b.origin { own = policy.stepPerFile } else { own = false }
            if own || !sharing || units.isEmpty { units.append([]) }
            units[units.count - 1] += b.operations
            sharing = !own
        }
        var outcomes: [FactOutcome] = []
        do {
            for operations in units {
                for start in stride(from: 0, to: operations.count, by: max(1, policy.maximumOperations)) {
                    let slice = Array(operations[start..<min(operations.count, start + policy.maximumOperations)])
                    let r = try repository.commit(slice)
                    outcomes += r.outcomes
                    report.outcomes += r.outcomes
                    if r.sequences != nil { report.timeSteps.append(r.timeStep) }
                    report.warnings += r.warnings
                }
            }
        } catch {
            // Slices committed before the failure are durable; re-offering them is harmless
            // (they come back as duplicates), losing the others is not.
            for b in batches {
                if case .file = b.origin { poller.release(b) } else { carried.append(b) }
            }
            throw error
        }

        var offset = 0
        for b in batches {
            let mine = Array(outcomes[offset..<offset + b.facts.count])
            offset += b.facts.count
            for o in mine {
                switch o {
                case .added, .superseded, .retracted: report.stored += 1
                case .duplicate: report.duplicates += 1
                default: break
                }
            }
            if case .file = b.origin {
                do {
                    if let file = try poller.complete(b, outcomes: mine) {
                        report.files.append(file)
                        report.rejections += file.rejections
                        if let p = file.rejectionsFile { report.keptIn(p) }
                    }
                } catch {
                    report.failures.append("\(b.origin): \(error)")
                }
            } else {
                var rejections = b.rejections
                for (fact, o) in zip(b.facts, mine) {
                    let why: String
                    switch o {
                    case .invalid(let reason): why = reason
                    case .notFound(let what): why = "no live fact \(what) to retract"
                    default: continue
                    }
                    rejections.append(FactRejection(file: b.origin.description, line: fact.line, reason: .refused(why), text: fact.text))
                }
                report.rejections += rejections
                if !rejections.isEmpty {
                    // Lines read from a stream exist nowhere else: write them down now.
                    do {
                        if let p = try poller.keep(rejections, of: b.origin) { report.keptIn(p) }
                    } catch {
                        report.failures.append("\(b.origin): rejected lines not kept: \(error)")
                    }
                }
                // A stream's messages are acknowledged only now, when their step is durable.
                if case .jetstream = b.origin { _ = try? poller.complete(b, outcomes: mine) }
            }
        }
        return report
    }
}
