// The loop of `recipe ingest`: one `SourceIngestor.step` after another, one JSON line per
// committed step, signals checked between steps (a step in progress is always finished:
// SIGTERM/SIGINT are blocked and read from a signalfd, so they never interrupt a commit).
import Foundation
import Glibc
import Posix
import Storage
import Worker

final class IngestLoop {
    let ingestor: SourceIngestor
    let signals: SignalDescriptor
    let printIDs: Bool
    let once: Bool
    private(set) var steps = 0
    private(set) var stored = 0
    private(set) var lastTimeStep: UInt64 = 0
    private(set) var exitReason = "finished"

    init(ingestor: SourceIngestor, signals: SignalDescriptor, printIDs: Bool, once: Bool) {
        self.ingestor = ingestor
        self.signals = signals
        self.printIDs = printIDs
        self.once = once
    }

    /// Runs until a signal (or, with `once`, until nothing is left); the exit code.
    func run() -> ExitCode {
        var failuresInARow = 0
        lastTimeStep = ingestor.repository.currentTimeStep
        while true {
            if let s = (try? signals.pending())?.first {
                exitReason = s == SIGTERM ? "SIGTERM" : s == SIGINT ? "SIGINT" : "signal \(s)"
                return .ok
            }
            let report: IngestReport?
            do {
                report = try ingestor.step(timeoutMilliseconds: once ? 0 : 250)
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
                if once && (ingestor.poller.standardInput.map { $0.finished } ?? true) { return .ok }
                continue
            }
            emit(report)
        }
    }

    /// Prints the step's acknowledgement line (stdout) and its rejections and failures (stderr).
    private func emit(_ r: IngestReport) {
        for f in r.failures { IngestOutput.note("recipe ingest: \(f)") }
        for w in r.warnings { IngestOutput.note("recipe ingest: warning: \(w)") }
        // Inbox rejections are in the rejected area; stream ones only here.
        let fileRejections = r.files.flatMap { $0.rejections }
        for j in r.rejections where !fileRejections.contains(j) { IngestOutput.note("rejected \(j)") }
        guard r.batches > 0 else { return }
        var added = 0, superseded = 0, duplicates = 0, retracted = 0, refused = 0
        var ids: [String] = [], retractedIDs: [String] = []
        for o in r.outcomes {
            switch o {
            case .added(let id, _): added += 1; ids.append(id)
            case .superseded(let id, _, _): superseded += 1; ids.append(id)
            case .duplicate(let id): duplicates += 1; ids.append(id)
            case .retracted(let id): retracted += 1; retractedIDs.append(id)
            case .notFound, .invalid: refused += 1
            }
        }
        steps += r.timeSteps.count
        stored += r.stored
        if let last = r.timeSteps.last { lastTimeStep = last }
        var line: [String: Any] = [
            "event": "step", "time_steps": r.timeSteps.map { Int($0) }, "time_step": Int(lastTimeStep),
            "added": added, "superseded": superseded, "duplicates": duplicates, "retracted": retracted,
            "rejected": r.rejections.count, "facts": r.outcomes.count, "durable": true,
            "files": r.files.map { ["name": $0.name, "moved_to": $0.movedTo, "facts": $0.facts, "stored": $0.stored,
                                    "rejected": $0.rejections.count] as [String: Any] },
        ]
        if refused > 0 { line["refused"] = refused }
        if !r.warnings.isEmpty { line["warnings"] = r.warnings }
        if printIDs {
            line["ids"] = ids
            line["retracted_ids"] = retractedIDs
        }
        IngestOutput.json(line)
    }
}
