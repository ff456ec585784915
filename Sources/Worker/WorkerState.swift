// State shared by the worker's services: the current config (replaced on SIGHUP), the
// stop flag, the metrics and the log. Reads are cheap copies under a lock.
import Foundation

public final class WorkerState: @unchecked Sendable {
    private let lock = NSLock()
    private var _config: WorkerConfig
    private var _stopping = false
    private var _ingestHeartbeat = monotonicSeconds()
    public let metrics = WorkerMetrics()
    /// The JetStream source's state for `stats` (empty without one).
    public let jetstream = JetStreamStatus()
    public let log: WorkerLog

    public init(config: WorkerConfig, log: WorkerLog) {
        _config = config
        self.log = log
    }

    public var config: WorkerConfig {
        get { lock.withLock { _config } }
        set { lock.withLock { _config = newValue } }
    }

    /// Set once shutdown begins: connections finish their request and close, the
    /// ingest thread finishes its step, generation stops at the next token.
    public var stopping: Bool { lock.withLock { _stopping } }
    public func requestStop() { lock.withLock { _stopping = true } }

    /// The ingest side's sign of life: a round of the ingest thread, or a step of work inside a
    /// long commit (prompt refinement). The watchdog pings only while it is recent.
    public func ingestAlive() { lock.withLock { _ingestHeartbeat = monotonicSeconds() } }
    /// Seconds since `ingestAlive` was last called.
    public var ingestIdleSeconds: Double { monotonicSeconds() - lock.withLock { _ingestHeartbeat } }
}

/// The errors of the worker, each naming what failed and where.
public enum WorkerError: Error, CustomStringConvertible {
    case socket(path: String, reason: String)
    case group(name: String)
    case source(path: String, reason: String)
    /// An inbox file could not be read or moved aside this time (`reason` names the call
    /// and path); it is tried again after `retrySeconds`, the back-off doubling each time.
    case sourceRetry(path: String, reason: String, retrySeconds: Double)
    case shutdownTimedOut(seconds: Double, waitingFor: String)

    public var description: String {
        switch self {
        case let .socket(path, reason): return "socket \(path): \(reason)"
        case let .group(name): return "socket group '\(name)' does not exist"
        case let .source(path, reason): return "source \(path): \(reason)"
        case let .sourceRetry(_, reason, s):
            return "\(reason); retrying in \(s == s.rounded() ? String(Int(s)) : String(s)) s"
        case let .shutdownTimedOut(s, what): return "shutdown took longer than \(s) s (still waiting for \(what))"
        }
    }
}
