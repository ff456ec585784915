// Turns the batches of the fact sources into time steps, one step per call: wait for the
// sources (`FactSources.poll`), gather batches until the step is full or its collection
// window has passed, commit them in one `Repository.commit` (one encode call, one log
// fsync), then hand each batch back to its source (`SourceBatch.complete`: inbox files move
// aside, stream messages are acknowledged, rejected stream lines are written down, only now
// that their facts are durable). When the commit fails, each batch is released: inbox files
// are offered again, and the lines of pipes, stdin and streams, which cannot be read twice,
// are carried to the next step. The worker's ingest thread and `recipe ingest` both call it.
import Posix
import Storage

public final class TimeStepCommitter: @unchecked Sendable {
    public let sources: FactSources
    public let repository: Repository
    public var policy: TimeStepPolicy
    /// Stream batches whose commit failed, retried first at the next step.
    private var carried: [SourceBatch] = []

    public init(sources: FactSources, repository: Repository, policy: TimeStepPolicy = TimeStepPolicy()) {
        self.sources = sources
        self.repository = repository
        self.policy = policy
    }

    /// Runs one time step: waits up to `timeoutMilliseconds` for something to ingest;
    /// returns nil when nothing arrived. Throws the commit error after releasing the
    /// batches (nothing is lost: files stay in the inbox, stream lines are carried).
    public func step(timeoutMilliseconds: Int32) throws -> TimeStepReport? {
        var report = TimeStepReport()
        var batches = carried
        carried = []
        if batches.isEmpty {
            let first = try sources.poll(timeoutMilliseconds: timeoutMilliseconds)
            batches = first.batches
            report.failures += first.failures.map { "\($0.0): \($0.1)" }
        }
        guard !batches.isEmpty else { return report.failures.isEmpty ? nil : report }
        let deadline = monotonicSeconds() + Double(policy.collectMilliseconds) / 1000
        while batches.reduce(0, { $0 + $1.facts.count }) < policy.maximumOperations {
            let left = Int32(max(0, (deadline - monotonicSeconds()) * 1000))
            if left == 0 { break }
            let more = try sources.poll(timeoutMilliseconds: left)
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
        do {
            for operations in units {
                for start in stride(from: 0, to: operations.count, by: max(1, policy.maximumOperations)) {
                    let slice = Array(operations[start..<min(operations.count, start + policy.maximumOperations)])
                    let r = try repository.commit(slice)
                    report.outcomes += r.outcomes
                    if r.sequences != nil { report.timeSteps.append(r.timeStep) }
                    report.warnings += r.warnings
                }
            }
        } catch {
            // Slices committed before the failure are durable; re-offering them is harmless
            // (they come back as duplicates), losing the others is not.
            for b in batches where !b.release() { carried.append(b) }
            throw error
        }

        var offset = 0
        for b in batches {
            let mine = Array(report.outcomes[offset..<offset + b.facts.count])
            offset += b.facts.count
            do {
                let done = try b.complete(outcomes: mine)
                report.rejections += done.rejections
                if let path = done.keptIn { report.keptIn(path) }
                if let file = done.file { report.files.append(file) }
                if let failure = done.failure { report.failures.append("\(b.origin): \(failure)") }
            } catch {
                report.failures.append("\(b.origin): \(error)")
            }
        }
        return report
    }
}
