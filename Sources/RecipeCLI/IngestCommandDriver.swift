// What `recipe ingest` runs once its sources and repository are open: one
// `TimeStepCommitter.step` after another, one JSON line per committed step (the
// acknowledgement), signals checked between steps (a step in progress is always finished:
// SIGTERM/SIGINT are blocked and read from a signalfd, so they never interrupt a commit).
import Foundation
import Glibc
import Posix
import Storage
import Worker

final class IngestCommandDriver {
    let committer: TimeStepCommitter
    let signals: SignalDescriptor
    let printIDs: Bool
    let once: Bool
    private(set) var steps = 0
    private(set) var stored = 0
    private(set) var lastTimeStep: UInt64 = 0
    private(set) var exitReason = "finished"

    init(committer: TimeStepCommitter, signals: SignalDescriptor, printIDs: Bool, once: Bool) {
        self.committer = committer
        self.signals = signals
        self.printIDs = printIDs
        self.once = once
    }

    /// Runs until a signal (or, with `once`, until nothing is left); the exit code.
    func run() -> ExitCode {
        var failuresInARow = 0
        lastTimeStep = committer.repository.currentTimeStep
        while true {
            if let s = (try? signals.pending())?.first {
                exitReason = s == SIGTERM ? "SIGTERM" : s == SIGINT ? "SIGINT" : "signal \(s)"
                return .ok
            }
            let report: TimeStepReport?
            do {
                report = try committer.step(timeoutMilliseconds: once ? 0 : 250)
                failuresInARow = 0
            } catch {
                // Nothing of the step was acknowledged: files stay in the inbox, stream lines
                // are carried to the next step. A poisoned log (failed fsync) needs a reopen:
                // exit and let the supervisor restart us (recovery reads what is on disk).
                IngestOutput.note("recipe ingest: step failed, nothing of it acknowledged: \(error)")
                if case StorageError.needsReopen = error { exitReason = "needs reopen"; return .failure }
                failuresInARow += 1
                if once && failuresInARow >= 3 { exitReason = "step failed"; return .failure }
                // Back off (ENOSPC, a failing encoder) but keep answering signals.
                _ = try? Poll.wait([(signals.descriptor.rawValue, Poll.readable)], timeoutMilliseconds: 1000)
                continue
            }
            guard let report else {
                if once && (committer.sources.standardInput.map { $0.finished } ?? true) { return .ok }
                continue
            }
            emit(report)
        }
    }

    /// Prints the step's acknowledgement line (stdout) and its rejections and failures (stderr).
    private func emit(_ r: TimeStepReport) {
        for f in r.failures { IngestOutput.note("recipe ingest: \(f)") }
        for w in r.warnings { IngestOutput.note("recipe ingest: warning: \(w)") }
        // Inbox rejections are in the rejected area; stream ones only here.
        let fileRejections = r.files.flatMap { $0.rejections }
        for j in r.rejections where !fileRejections.contains(j) { IngestOutput.note("rejected \(j)") }
        guard r.batches > 0 else { return }
        let counts = r.counts
        steps += r.timeSteps.count
        stored += counts.stored
        if let last = r.timeSteps.last { lastTimeStep = last }
        var line: [String: Any] = [
            "event": "step", "time_steps": r.timeSteps.map { Int($0) }, "time_step": Int(lastTimeStep),
            "added": counts.added, "superseded": counts.superseded, "duplicates": counts.duplicates,
            "retracted": counts.retracted, "rejected": r.rejections.count, "facts": r.outcomes.count, "durable": true,
            "files": r.files.map { ["name": $0.name, "moved_to": $0.movedTo, "facts": $0.facts, "stored": $0.counts.stored,
                                    "rejected": $0.rejections.count] as [String: Any] },
        ]
        if counts.refused > 0 { line["refused"] = counts.refused }
        if !r.warnings.isEmpty { line["warnings"] = r.warnings }
        if printIDs {
            var ids: [String] = [], retractedIDs: [String] = []
            for o in r.outcomes {
                switch o {
                case .added(let id, _), .superseded(let id, _, _), .duplicate(let id): ids.append(id)
                case .retracted(let id): retractedIDs.append(id)
                case .notFound, .invalid: break
                }
            }
            line["ids"] = ids
            line["retracted_ids"] = retractedIDs
        }
        IngestOutput.json(line)
    }
}
