// `recipe serve` once the models are loaded: the services of the worker and their order.
//
//   start:  signals (blocked before any thread exists, by the caller) -> repository (open,
//           recovered, by the caller) -> query socket (listening) -> ingest thread -> prompt
//           warmer -> READY=1
//   stop:   SIGTERM/SIGINT -> STOPPING=1 -> stop accepting (socket file removed) -> the
//           ingest thread finishes its current time step (durable) -> the prompt warmer its
//           current fact -> connections finish
//           their request (generation stops at the next token) -> repository closed -> 0
//
// Everything after the signal must fit in `shutdownTimeoutSeconds`; if the ingest thread is
// still inside a commit then, the process exits 1 without closing (the log is fsynced at
// every step, so nothing acknowledged is lost; the next open replays it).
// Concurrency: ingestion is one thread (`runIngestThread`, a `TimeStepCommitter`); each
// client has a thread; queries read the last published snapshot and never wait for a
// commit; the LLM runs one generation at a time (the engine's lock): on 2 cores, concurrent
// decodes would only share the same FLOPs.
import Foundation
import Glibc
import Posix
import Storage

public final class WorkerService: @unchecked Sendable {
    public let state: WorkerState
    let repository: Repository
    let engine: AnswerEngine
    let signals: SignalDescriptor
    let committer: TimeStepCommitter
    let reload: () throws -> WorkerConfig
    let notifier: SystemdNotifier
    private let ingestDone = DispatchSemaphore(value: 0)

    /// - Parameters:
    ///   - reload: reads the config again (SIGHUP), with the command line's overrides.
    public init(state: WorkerState, repository: Repository, engine: AnswerEngine, signals: SignalDescriptor,
                sources: FactSources, reload: @escaping () throws -> WorkerConfig,
                environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.state = state
        self.repository = repository
        self.engine = engine
        self.signals = signals
        self.reload = reload
        committer = TimeStepCommitter(sources: sources, repository: repository, policy: Self.policy(state.config))
        notifier = SystemdNotifier(environment: environment)
    }

    /// The time-step policy of a config (the ingest thread reapplies it at every step: SIGHUP).
    public static func policy(_ c: WorkerConfig) -> TimeStepPolicy {
        TimeStepPolicy(maximumOperations: c.timeStep.maxFacts, collectMilliseconds: Int32(c.timeStep.maxDelayMilliseconds),
                       stepPerFile: c.timeStep.stepPerFile)
    }

    /// The sources the config names: inboxes, named pipes, standard input.
    public static func sources(_ c: WorkerConfig) throws -> FactSources {
        let maxLine = max(c.limits.maxFactBytes * 4, 1024)
        let inboxes = try c.inboxes.map { p -> InboxWatcher in
            do {
                let w = try InboxWatcher(directory: c.resolve(p), parser: FactParser(maximumLineBytes: maxLine, sourceKind: .file))
                return w
            } catch { throw WorkerError.source(path: c.resolve(p), reason: "\(error)") }
        }
        let pipes = try c.pipes.map { p -> PipeReader in
            do { return try PipeReader(path: c.resolve(p), parser: FactParser(maximumLineBytes: maxLine, sourceKind: .pipe)) }
            catch { throw WorkerError.source(path: c.resolve(p), reason: "\(error)") }
        }
        // Read streams in small bites: what is not read stays in the pipe (the writer blocks:
        // backpressure), so a time step stays near timeStep.maxFacts and shutdown never has
        // a large backlog of read-but-uncommitted lines to finish.
        for p in pipes { p.maximumBytesPerCall = 64 * 1024 }
        let stdin = c.stdin ? try SourceStandardInput(parser: FactParser(maximumLineBytes: maxLine, sourceKind: .stdin)) : nil
        stdin?.maximumBytesPerCall = 64 * 1024
        // Lines read from a stream exist nowhere else: their rejections are kept on disk.
        if !pipes.isEmpty || stdin != nil {
            let dir = c.resolve(c.pipeRejections)
            do { try FileSystem.makeDirectory(dir, mode: 0o750) } catch { throw WorkerError.source(path: dir, reason: "\(error)") }
            for p in pipes {
                p.rejectionLog = RejectionLog(path: dir + "/" + RejectionLog.fileName(forSource: p.path, among: pipes.map(\.path)))
            }
            stdin?.rejectionLog = RejectionLog(path: dir + "/stdin.rejections")
        }
        let sources = FactSources(inboxes: inboxes, pipes: pipes, standardInput: stdin)
        sources.pollingIntervalMilliseconds = Int32(c.pollIntervalMilliseconds)
        return sources
    }

    /// How `run` ended.
    public enum Outcome: Equatable, Sendable {
        /// Stopped by SIGTERM/SIGINT (or a failed shutdown) with this exit code.
        case exited(Int32)
        /// SIGHUP changed settings that need fresh services (models, checkpoint, paths,
        /// sources, socket): everything is shut down gracefully and durable; the caller
        /// re-executes the process (same pid for systemd), which reopens the repository
        /// and re-encodes it when the fingerprints changed.
        case restart
    }

    /// Runs until SIGTERM/SIGINT (or a SIGHUP that needs a restart).
    public func run() throws -> Outcome {
        let log = state.log
        let handler = RequestHandler(repository: repository, engine: engine, state: state)
        let server = try SocketServer(config: state.config, handler: handler, state: state)
        log.info("listening", ["socket": server.path, "mode": state.config.socket.mode, "live_facts": repository.liveCount,
                               "time_step": repository.currentTimeStep])

        let ingest = Thread { [self] in
            runIngestThread(handler)
            ingestDone.signal()
        }
        ingest.stackSize = 8 << 20
        ingest.start()
        let warmer = PromptWarmer(repository: repository, engine: engine, state: state)
        if state.config.promptStates.atIngestion && engine.promptStateCapacity > 0 { warmer.start() }
        notifier.notify("READY=1\nMAINPID=\(getpid())\nSTATUS=\(status(server))")

        var nextWatchdog = monotonicSeconds()
        var lastStep = repository.snapshot().timeStep
        var lastStepChange = monotonicSeconds()
        var nextStatus = monotonicSeconds() + 2
        var stopSignal: Int32 = 0
        loop: while true {
            let wait = notifier.watchdogInterval.map { min($0, 1.0) } ?? 1.0
            let ready = try Poll.wait([(signals.descriptor.rawValue, Poll.readable), (server.listener.rawValue, Poll.readable)],
                                      timeoutMilliseconds: Int32(wait * 1000))
            if ready[1] != 0 { server.acceptPending() }
            for s in try signals.pending() {
                switch s {
                case SIGHUP:
                    if reloadConfig(server) { stopSignal = s; break loop }
                case SIGTERM, SIGINT: stopSignal = s; break loop
                default: break
                }
            }
            let now = monotonicSeconds()
            if let interval = notifier.watchdogInterval, now >= nextWatchdog {
                // Ping only while the ingest thread is alive: a step stuck for longer than
                // WatchdogSec (2 intervals) lets systemd restart the worker.
                // A long inbox file is several commits inside one step: a new published
                // time step counts as progress too.
                let step = repository.snapshot().timeStep
                if step != lastStep { lastStep = step; lastStepChange = now }
                let age = min(state.ingestIdleSeconds, now - lastStepChange)
                if age < 2 * interval {
                    notifier.notify("WATCHDOG=1")
                } else {
                    log.error("ingest_stalled", ["seconds": age])
                }
                nextWatchdog = now + interval
            }
            if now >= nextStatus {
                notifier.notify("STATUS=\(status(server))")
                nextStatus = now + 2
            }
        }

        // Graceful shutdown, in reverse start order, within the budget.
        let budget = state.config.shutdownTimeoutSeconds
        let deadline = monotonicSeconds() + budget
        let restarting = stopSignal == SIGHUP
        log.info("stopping", ["signal": stopSignal == SIGTERM ? "SIGTERM" : stopSignal == SIGINT ? "SIGINT" : "SIGHUP",
                              "budget_seconds": budget, "restart": restarting])
        notifier.notify(restarting ? "RELOADING=1\nSTATUS=restarting with the new config" : "STOPPING=1\nSTATUS=stopping")
        state.requestStop()
        server.stopListening()
        let left = max(0, deadline - monotonicSeconds())
        if ingestDone.wait(timeout: .now() + left) == .timedOut {
            log.error("shutdown_timeout", ["waiting_for": "ingest time step", "budget_seconds": budget])
            return .exited(1)
        }
        if !warmer.wait(until: deadline) {
            log.error("shutdown_timeout", ["waiting_for": "prompt states", "budget_seconds": budget])
            return .exited(1)
        }
        if !server.waitForConnections(until: deadline) {
            log.warning("shutdown_connections_open", ["connections": server.activeConnections])
        }
        do { try repository.close() } catch {
            log.error("close_failed", ["error": "\(error)"])
            return .exited(1)
        }
        log.info("stopped", ["time_step": repository.currentTimeStep, "live_facts": repository.snapshot().liveCount])
        return restarting ? .restart : .exited(0)
    }

    func status(_ server: SocketServer) -> String {
        let snap = repository.snapshot()
        let m = state.metrics.summary()
        return "\(snap.liveCount) facts, time step \(snap.timeStep), \(server.activeConnections) clients, \(m.asks) asks"
    }

    /// The ingest thread: one time step after another until shutdown; a failed commit is
    /// logged and retried (files stay in the inbox, stream lines are carried by the committer).
    func runIngestThread(_ handler: RequestHandler) {
        let log = state.log
        var failures = 0
        while !state.stopping {
            state.ingestAlive()
            committer.policy = Self.policy(state.config)
            do {
                guard let r = try committer.step(timeoutMilliseconds: 200) else { continue }
                failures = 0
                let counts = r.counts
                state.metrics.ingested(stored: counts.stored, duplicates: counts.duplicates, rejected: r.rejections.count,
                                       steps: r.timeSteps.count)
                if r.batches > 0 || !r.failures.isEmpty {
                    log.info("time_step", ["steps": r.timeSteps.map { Int($0) }, "batches": r.batches, "stored": counts.stored,
                                           "duplicates": counts.duplicates, "rejected": r.rejections.count,
                                           "files": r.files.map(\.name), "live_facts": repository.liveCount])
                }
                for rej in r.rejections.prefix(20) { log.warning("fact_rejected", ["where": "\(rej.file):\(rej.line)", "reason": "\(rej.reason)"]) }
                if r.rejections.count > 20 {  // the log stays readable; every one is on disk
                    log.warning("fact_rejections_not_logged", ["count": r.rejections.count - 20, "kept_in": r.rejectionFiles])
                }
                for w in r.warnings { log.warning("commit_warning", ["warning": w]) }
                for f in r.failures { log.error("source_failed", ["error": f]) }
                if let path = state.config.logging.metricsFile {
                    do { try FileSystem.atomicReplace(state.config.resolve(path), with: Array(handler.metricsText().utf8)) }
                    catch { log.warning("metrics_file_failed", ["error": "\(error)"]) }
                }
            } catch {
                if state.stopping {  // a long step (prompt refinement) abandoned for shutdown: not committed
                    log.info("time_step_abandoned", ["reason": "\(error)"])
                    break
                }
                failures += 1
                state.metrics.commitFailed()
                log.error("time_step_failed", ["error": "\(error)", "consecutive": failures])
                usleep(useconds_t(min(5_000_000, 100_000 << min(failures, 6))))
            }
        }
    }

    /// SIGHUP: limits, logging, time-step policy and allowed uids apply at once (open
    /// connections of uids no longer allowed are closed). Returns true when settings changed
    /// that need fresh services (paths, sources, models, the editor checkpoint or its prompt
    /// refinement, socket): `run` then shuts down and asks for a restart.
    func reloadConfig(_ server: SocketServer) -> Bool {
        let log = state.log
        let old = state.config
        var new: WorkerConfig
        do { new = try reload() } catch {
            log.error("reload_failed", ["error": "\(error)", "kept": "the running config"])
            return false
        }
        var restart: [String] = []
        if new.repository != old.repository { restart.append("repository") }
        if new.models != old.models { restart.append("models") }
        if new.checkpoint != old.checkpoint { restart.append("checkpoint") }
        if new.refinement != old.refinement { restart.append("refinement") }
        if new.promptStates != old.promptStates { restart.append("promptStates") }
        if new.inboxes != old.inboxes { restart.append("inboxes") }
        if new.pipes != old.pipes { restart.append("pipes") }
        if new.stdin != old.stdin { restart.append("stdin") }
        if new.jetstream != old.jetstream { restart.append("jetstream") }
        if new.pipeRejections != old.pipeRejections { restart.append("pipeRejections") }
        if new.socket.path != old.socket.path || new.socket.mode != old.socket.mode || new.socket.group != old.socket.group {
            restart.append("socket")
        }
        if new.logging.file != old.logging.file { restart.append("logging.file") }
        new.repository = old.repository; new.models = old.models; new.checkpoint = old.checkpoint; new.refinement = old.refinement
        new.promptStates = old.promptStates
        new.inboxes = old.inboxes; new.pipes = old.pipes; new.stdin = old.stdin; new.pipeRejections = old.pipeRejections; new.jetstream = old.jetstream
        new.socket.path = old.socket.path; new.socket.mode = old.socket.mode; new.socket.group = old.socket.group
        new.logging.file = old.logging.file
        state.config = new
        if let level = WorkerLog.Level(name: new.logging.level) { log.setLevel(level) }
        // A uid taken off the list loses its open connections too, not only new ones: the
        // credentials were read at accept, so they are checked again here.
        server.applyAllowedUIDs(new.socket.allowedUIDs)
        if !restart.isEmpty {
            log.info("reload_restart", ["changed": restart])
            return true
        }
        log.info("reloaded", [:])
        notifier.notify("STATUS=reloaded config")
        return false
    }
}
