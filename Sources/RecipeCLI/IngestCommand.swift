// `recipe ingest`: the ingestion half of the worker, without the socket. Sources (inbox
// directories, named pipes, standard input) -> time steps -> the repository, printing one
// JSON line per committed step on stdout. That line is the acknowledgement scripts rely
// on: it is written (write(2), unbuffered) only after `Repository.commit` returned, i.e.
// after the log fsync, so every fact it names survives kill -9 from then on.
import Foundation
import Glibc
import Posix
import Storage
import Worker

enum IngestCommand: Subcommand {
    static let name = "ingest"
    static let summary = "ingest fact files, pipes and stdin into a repository (no socket)"
    static let help = """
    usage: recipe ingest --repository DIR [--inbox DIR ...] [--pipe PATH ...] [--stdin] [--once]
                         [--config FILE] [--fake-encoder] [options]
           recipe ingest --verify --repository DIR [--list-ids FILE] [--fake-encoder] [options]

    Watches the sources, gathers facts into time steps, encodes each step in one batch and
    commits it durably. On stdout, one JSON object per line:
      {"event":"open", ...}    what recovery found (torn tail, rebuild reason, rows applied)
      {"event":"step", "time_steps":[..], "added":n, "superseded":n, "duplicates":n,
       "retracted":n, "rejected":n, "durable":true, ...}   after each committed step
      {"event":"exit", ...}    on a clean exit
    A fact is acknowledged once the line of its step is printed. Rejected lines go to the
    inbox's .rejected/ area (files) or to stderr (pipes, stdin) as "file:line: reason".
    Without --once it runs until SIGTERM or SIGINT, finishes the current step, makes it
    durable (matrices msynced, manifest written) and exits 0.

    --verify reopens the repository (recovering it), rebuilds a scratch copy from the fact
    log alone (re-encoding every live fact) and compares each live row's key and prompt with
    the re-encode of its fact: every element must agree within --tolerance times the row's
    largest magnitude. It also checks that every live fact has exactly one row, the sentinel
    is the encoder's, and no statement is live twice.
    Exit 0 when everything matches, 1 otherwise.

    options:
      --repository DIR   the knowledge repository (created if absent)
      --inbox DIR        watch this inbox directory (repeatable, or comma-separated)
      --pipe PATH        read this named pipe, created if absent (repeatable)
      --stdin            read facts from standard input until end of file
      --once             process what is there now (inbox files at once, pipes' pending
                         lines, stdin to EOF) and exit
      --config FILE      worker config (Config/worker.json): repository, inboxes, pipes,
                         stdin, the time-step policy and limits.maxFactBytes (lines longer
                         than 4x are rejected, as in `recipe serve`); flags add to / override it
      --max-facts N      commit a step once N facts are gathered (default: config, 256)
      --collect-ms N     gather for N ms after the first fact before committing (default:
                         config maxDelayMilliseconds, 200)
      --settle-seconds S an inbox file present at start (or in polling mode) counts as
                         complete once unmodified for S seconds (default 2; 0 with --once)
      --polling          watch inboxes by polling instead of inotify
      --print-ids        add "ids" (every acknowledged fact id, duplicates included) and
                         "retracted_ids" to each step line
      --verify           check the repository instead of ingesting (see above)
      --list-ids FILE    with --verify: write the live fact ids, one per line, sorted
      --tolerance X      with --verify: largest accepted |difference| relative to the row's
                         largest |value| (default \(IngestVerify.defaultTolerance); 0: bit for bit).
                         A fact encoded in another batch shape differs by ~1e-5 relative
                         (OpenBLAS blocks the sums differently); a row of another fact,
                         zeros or a damaged float exponent differ by far more
    A fact log damaged in the middle (an intact record follows a bad one) is refused (exit 1,
    {"event":"refused"}) and left untouched: salvage it with `recipe repair`. A damaged or
    partial last record (what a crash during an append leaves) is cut and kept in DIR/torn/:
    it was never acknowledged ("torn_tail" in the open line).
    \(IngestEncoder.help)

    exit codes: 0 done (or verified), 1 failure (I/O, encoder, verification mismatch),
                2 bad command line or config
    """
    static let valued: Set<String> = IngestEncoder.valued.union(
        ["repository", "inbox", "pipe", "config", "max-facts", "collect-ms", "settle-seconds", "list-ids", "tolerance"])

    static func run(_ args: inout Arguments) throws -> ExitCode {
        // Block SIGTERM/SIGINT before any thread exists (model loading starts OpenBLAS and
        // Dispatch threads): they then arrive only through the signalfd polled between steps.
        let signals = try SignalDescriptor(blocking: [SIGTERM, SIGINT])
        // OpenBLAS starts its threads before main, with these signals unblocked: the handler
        // forwards a delivery to one of them to this thread, where it waits in the signalfd.
        SignalForwarding.install(signals.signals)
        var config = WorkerConfig()
        var configPath: String?
        if let path = args.string("config") {
            do { config = try WorkerConfig.load(path) } catch { throw UsageError("\(error)") }
            configPath = path
        }
        let repository = args.string("repository") ?? (configPath == nil ? nil : config.repository)
        guard let repository else { throw UsageError("--repository DIR is required (or a --config FILE naming one)") }
        config.repository = repository
        let verify = args.flag("verify")
        let listIDs = args.string("list-ids")
        let toleranceText = args.string("tolerance")
        let once = args.flag("once")
        let useStdin = args.flag("stdin") || (configPath != nil && config.stdin)
        let polling = args.flag("polling")
        let printIDs = args.flag("print-ids")
        var inboxes = repeated("inbox")
        var pipes = repeated("pipe")
        _ = args.string("inbox"); _ = args.string("pipe")
        if configPath != nil {
            inboxes = config.inboxes.map(config.resolve) + inboxes
            pipes = config.pipes.map(config.resolve) + pipes
        }
        let maxFacts = try args.int("max-facts", default: config.timeStep.maxFacts)
        let collect = try args.int("collect-ms", default: config.timeStep.maxDelayMilliseconds)
        let settleText = args.string("settle-seconds")
        if !verify {
            if listIDs != nil || toleranceText != nil { throw UsageError("--list-ids and --tolerance go with --verify") }
            guard !inboxes.isEmpty || !pipes.isEmpty || useStdin else {
                throw UsageError("no source: give --inbox DIR, --pipe PATH or --stdin (or a --config FILE)")
            }
        }
        let encoderArgs = try IngestEncoder.load(&args)
        try args.rejectUnknown()
        guard args.positional.isEmpty else { throw UsageError("unexpected argument '\(args.positional[0])'") }
        guard maxFacts >= 1 else { throw UsageError("--max-facts must be at least 1") }
        guard collect >= 0, collect <= 600_000 else { throw UsageError("--collect-ms must be in 0...600000") }
        let settle = try settleText.map { s -> Double in
            guard let v = Double(s), v >= 0 else { throw UsageError("--settle-seconds expects a number ≥ 0, got '\(s)'") }
            return v
        } ?? (once ? 0 : 2)

        if verify {
            let tolerance = try toleranceText.map { s -> Float in
                guard let v = Float(s), v >= 0 else { throw UsageError("--tolerance expects a number ≥ 0, got '\(s)'") }
                return v
            } ?? IngestVerify.defaultTolerance
            return try IngestVerify.run(repository: repository, encoder: encoderArgs.encoder, listIDs: listIDs, tolerance: tolerance)
        }

        let repo = try openRepository(repository, encoderArgs)
        let sources: FactSources
        do {
            // Line limit as `recipe serve` sets it: four times limits.maxFactBytes (JSON overhead).
            let maxLine = max(config.limits.maxFactBytes * 4, 1024)
            sources = FactSources(
                inboxes: try inboxes.map {
                    try InboxWatcher(directory: $0, parser: FactParser(maximumLineBytes: maxLine, sourceKind: .file),
                                     polling: polling, settleSeconds: settle)
                },
                pipes: try pipes.map { try PipeReader(path: $0, parser: FactParser(maximumLineBytes: maxLine, sourceKind: .pipe)) },
                standardInput: useStdin ? try SourceStandardInput(parser: FactParser(maximumLineBytes: maxLine, sourceKind: .stdin)) : nil)
        } catch {
            try? repo.close()
            throw error
        }
        sources.pollingIntervalMilliseconds = Int32(clamping: config.pollIntervalMilliseconds)
        let committer = TimeStepCommitter(sources: sources, repository: repo,
                                          policy: TimeStepPolicy(maximumOperations: maxFacts, collectMilliseconds: Int32(collect),
                                                                 stepPerFile: config.timeStep.stepPerFile))
        let driver = IngestCommandDriver(committer: committer, signals: signals, printIDs: printIDs, once: once)
        let code = driver.run()
        let warnings = repo.flush()
        for w in warnings { IngestOutput.note("recipe ingest: warning: \(w)") }
        do { try repo.close() } catch {
            IngestOutput.note("recipe ingest: closing \(repository): \(error)")
            return .failure
        }
        IngestOutput.json(["event": "exit", "reason": driver.exitReason, "time_step": Int(driver.lastTimeStep),
                           "steps": driver.steps, "stored": driver.stored])
        return code
    }

    /// Opens (recovering) the repository and prints the open report as a JSON line.
    static func openRepository(_ path: String, _ loaded: IngestEncoder.Loaded) throws -> Repository {
        var bar = ProgressBar(total: 0, label: "re-encoding")
        let t0 = Date()
        let repo: Repository
        do {
            repo = try Repository(path: path, encoder: loaded.encoder) { p in
                if bar.total != p.total { bar = ProgressBar(total: p.total, label: "re-encoding") }
                bar.update(p.done)
            }
        } catch StorageError.damagedLog(let d) {
            IngestOutput.json(["event": "refused", "repository": path, "damaged_offset": d.offset, "reason": d.reason,
                               "last_intact_record": Int(d.lastIntactRecord), "intact_records_after": d.intactRecordsAfter])
            throw StorageError.damagedLog(d)
        }
        let r = repo.openReport
        var line: [String: Any] = ["event": "open", "repository": path, "encoder": loaded.description,
                                   "live_facts": r.liveFacts, "records_replayed": r.recordsReplayed,
                                   "rows_applied": r.rowsApplied, "time_step": Int(repo.currentTimeStep),
                                   "seconds": Date().timeIntervalSince(t0)]
        if let why = r.rebuilt { line["rebuilt"] = why }
        if let t = r.tornTail {
            line["torn_tail"] = ["log": t.logPath, "offset": t.offset, "bytes": t.length, "record": Int(t.record),
                                 "reason": t.reason, "kept_in": t.savedPath] as [String: Any]
            IngestOutput.note("recipe ingest: \(t.logPath): cut a damaged tail at byte \(t.offset) (record \(t.record), "
                         + "\(t.length) bytes: \(t.reason)); kept in \(t.savedPath)")
        }
        if !r.skippedRecords.isEmpty { line["skipped_records"] = r.skippedRecords }
        if !r.warnings.isEmpty { line["warnings"] = r.warnings }
        if let why = r.rebuilt, why != "new repository" { IngestOutput.note("recipe ingest: rebuilt the matrices: \(why)") }
        IngestOutput.json(line)
        return repo
    }

    /// Every value of a repeatable `--name V` / `--name=V` option (comma-separated lists
    /// too): `Arguments` keeps only the last one.
    static func repeated(_ name: String) -> [String] {
        let argv = Array(CommandLine.arguments.dropFirst(2))
        var out: [String] = []
        var i = 0
        while i < argv.count {
            let a = argv[i]
            if a == "--" { break }
            if a == "--\(name)", i + 1 < argv.count { out.append(argv[i + 1]); i += 2; continue }
            if a.hasPrefix("--\(name)=") { out.append(String(a.dropFirst(name.count + 3))) }
            i += 1
        }
        return out.flatMap { $0.split(separator: ",").map(String.init) }.filter { !$0.isEmpty }
    }
}
