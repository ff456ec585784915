// `recipe serve`: the worker. Loads the models once, opens the repository with the
// editor as its encoder, starts the sources and the query socket, and runs until
// SIGTERM/SIGINT (see `WorkerService` for the order of services and shutdown).
import Foundation
import Glibc
import Models
import Posix
import Recipe
import Storage
import Worker

enum ServeCommand: Subcommand {
    static let name = "serve"
    static let summary = "run the worker: ingest facts, answer questions on a Unix socket"
    static let help = """
    usage: recipe serve [--config FILE] [--repository DIR] [--socket PATH] [--models DIR] [--threads N]

    Runs the knowledge-editing worker until SIGTERM or SIGINT: watches the inbox
    directories and named pipes of the config, commits what arrives in time steps, and
    answers requests on the Unix socket (line-delimited JSON; see `recipe ask --help` and
    Protocol.md). Logs are JSON lines on stderr. Under systemd (Type=notify) it reports
    READY, STATUS, WATCHDOG and STOPPING. SIGHUP reloads the config: limits, logging,
    time-step policy and allowed uids at once (open connections of a uid taken off
    socket.allowedUIDs are told "forbidden" and closed); a change of models, checkpoint, prompt
    refinement, prompt states, paths, sources or socket shuts down gracefully and
    re-executes the worker in place (a new checkpoint or refinement re-encodes the
    repository from its log at open). Facts given as question and target have their
    prompts refined at ingestion (~1 s each; the config's "refinement", Operations.md). The
    keys and values of each new fact's prompt are computed in the background and kept on
    disk, so that a first question about it skips that part of the prefill (145 KiB per
    fact, 4,096 facts by default; the config's "promptStates"). A question longer than
    limits.maxQuestionTokens (512) is refused, an ask whose client hung up stops at the
    next token, and at limits.maxClients the connection idle longest makes room for a new
    client (Operations.md, "Clients").

      --config FILE      worker config (JSON; every field optional, see Config/worker.json)
      --repository DIR   knowledge repository directory (overrides the config)
      --socket PATH      query socket path (overrides the config)
    \(modelsOptionHelp)
    \(threadsOptionHelp)
    """
    static let valued: Set<String> = ["config", "repository", "socket", "models", "threads"]

    static func run(_ args: inout Arguments) throws -> ExitCode {
        // Signals first: blocked by main.swift before any other thread exists, so every
        // thread inherits the mask and SIGTERM arrives only through the signalfd.
        let signals = try serveSignals?.get() ?? SignalDescriptor(blocking: [SIGTERM, SIGINT, SIGHUP])
        let configPath = args.string("config")
        let repositoryArg = args.string("repository"), socketArg = args.string("socket"), modelsArg = args.string("models")
        try applyThreads(&args)
        try args.rejectUnknown()

        let loadConfig: @Sendable () throws -> WorkerConfig = {
            var c = try configPath.map { try WorkerConfig.load($0) } ?? WorkerConfig()
            if let r = repositoryArg { c.repository = r }
            if let s = socketArg { c.socket.path = s }
            if let m = modelsArg { c.models = m }
            try c.validate(path: configPath ?? "command line")
            return c
        }
        let config: WorkerConfig
        do { config = try loadConfig() } catch let e as WorkerConfigError { throw UsageError("\(e)") }
        let log = try WorkerLog(level: WorkerLog.Level(name: config.logging.level) ?? .info,
                                filePath: config.logging.file.map { config.resolve($0) })
        log.info("starting", ["pid": Int(getpid()), "config": configPath ?? "(defaults)", "repository": config.repository])

        let started = Date()
        let paths = ModelPaths(directory: config.models)
        let lm = try LanguageModel(path: ModelPaths.require(paths.llm).path)
        let (factEncoder, checkpointName) = try EditorCheckpoint.factEncoder(paths, checkpoint: config.checkpoint, seed: 1,
                                                                             refinement: config.refinement, llm: lm)
        log.info("models_loaded", ["llm": lm.path, "encoder": paths.encoder.path, "checkpoint": checkpointName,
                                   "seconds": Date().timeIntervalSince(started)])

        let state = WorkerState(config: config, log: log)
        // Prompt refinement can make a time step (or a re-encode at open) take minutes: its
        // steps count as the ingest side's progress for the watchdog, and shutdown abandons it.
        factEncoder.refiner?.observe(shouldStop: { state.stopping }, onStep: { state.ingestAlive() })

        try FileSystem.makeDirectory(config.repository, mode: 0o750)
        var lastProgress = 0.0
        let opening = StartupExtension(state: state)
        let repository: Repository
        do {
            repository = try Repository(path: config.repository, encoder: factEncoder) { p in
                state.ingestAlive()
                opening.progress = "re-encoding the repository: \(p.done)/\(p.total) facts"
                let now = Date().timeIntervalSince1970
                if now - lastProgress > 2 { lastProgress = now; log.info("re_encoding", ["done": p.done, "total": p.total]) }
            }
        } catch StorageError.damagedLog(let d) {
            log.error("repository_damaged", ["path": config.repository, "offset": d.offset, "reason": d.reason,
                                             "last_intact_record": Int(d.lastIntactRecord),
                                             "intact_records_after": d.intactRecordsAfter])
            throw StorageError.damagedLog(d)
        }
        opening.finish()
        let open = repository.openReport
        var opened: [String: Any] = ["path": config.repository, "live_facts": repository.liveCount,
                                     "time_step": repository.currentTimeStep, "records_replayed": open.recordsReplayed,
                                     "rows_applied": open.rowsApplied]
        if let why = open.rebuilt { opened["rebuilt"] = why }
        log.info("repository_open", opened)
        if let t = open.tornTail {
            // Normal after a crash during an append (never acknowledged), but never silent.
            state.metrics.tornTail(bytes: t.length)
            log.warning("torn_tail", ["log": t.logPath, "offset": t.offset, "bytes": t.length, "record": Int(t.record),
                                      "reason": t.reason, "kept_in": t.savedPath])
        }
        for s in open.skippedRecords { log.warning("record_skipped", ["what": s]) }
        for w in open.warnings { log.warning("open_warning", ["what": w]) }

        let sources = try WorkerService.sources(config)
        sources.jetstream = try WorkerService.jetStreamSource(config, repository: repository, state: state)
        var states: PromptStateStore?
        if config.promptStates.capacity > 0 {
            let path = config.resolve(config.promptStates.file)
            states = try PromptStateStore(path: path, config: lm.llama.config, prefixRows: ServeEngine.prefixRows(factEncoder),
                                          capacity: config.promptStates.capacity, fingerprint: factEncoder.modelFingerprints.llm,
                                          maxBytes: config.promptStates.maxMegabytes << 20,
                                          keepFreeBytes: Int64(config.promptStates.keepFreeMegabytes) << 20)
            log.info("prompt_states_open", ["path": path, "entries": states!.counts.entries, "capacity": states!.capacity,
                                            "started_over": states!.resetReason ?? NSNull()])
        }
        let engine = ServeEngine(lm: lm, encoder: factEncoder, editor: checkpointName,
                                 promptCacheEntries: config.limits.promptCacheEntries, states: states, metrics: state.metrics,
                                 maxBatch: config.limits.maxBatch)
        let service = WorkerService(state: state, repository: repository, engine: engine,
                                    signals: signals, sources: sources, reload: loadConfig)
        switch try service.run() {
        case .exited(let code):
            // A failed shutdown may leave a thread inside a commit: leave without running
            // exit handlers (OpenBLAS's would wait for it). Logs are unbuffered writes.
            if code != 0 { _exit(code) }
            return .ok
        case .restart:
            // A new checkpoint, models or paths: start over in this process (same pid, so
            // systemd keeps tracking it; READY=1 comes again once the socket listens).
            log.info("re_executing", ["argv": CommandLine.arguments])
            _ = try Syscall.run(.open, "execv", path: "/proc/self/exe") { execv("/proc/self/exe", CommandLine.unsafeArgv) }
            return .failure
        }
    }
}

/// While the repository opens (a re-encode of every fact when the models, the checkpoint or
/// the prompt refinement changed can take long, ~1 s per refined fact), asks systemd every
/// 5 s for another minute of TimeoutStartSec (EXTEND_TIMEOUT_USEC) with a STATUS line, as
/// long as the re-encode made progress in the last minute: a stuck open still times out.
final class StartupExtension: @unchecked Sendable {
    private let lock = NSLock()
    private var _progress = "opening the repository"
    private let finished = DispatchSemaphore(value: 0)

    var progress: String {
        get { lock.withLock { _progress } }
        set { lock.withLock { _progress = newValue } }
    }

    init(state: WorkerState, environment: [String: String] = ProcessInfo.processInfo.environment) {
        let notifier = SystemdNotifier(environment: environment)
        guard notifier.isActive else { return }
        Thread { [self] in
            while finished.wait(timeout: .now() + 5) == .timedOut {
                guard state.ingestIdleSeconds < 60 else { continue }
                notifier.notify("EXTEND_TIMEOUT_USEC=60000000\nSTATUS=\(progress)")
            }
        }.start()
    }

    func finish() { finished.signal() }
}
