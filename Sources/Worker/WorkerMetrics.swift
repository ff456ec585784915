// Counters of the running worker, rendered in the Prometheus text exposition format for
// the `metrics` request and the optional textfile (node_exporter's textfile collector).
import Foundation
import WorkerAPI

public final class WorkerMetrics: @unchecked Sendable {
    private let lock = NSLock()
    private var requests: [String: Int] = [:]
    private var errors: [String: Int] = [:]
    private var askLatency = Histogram(bounds: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30])
    private(set) var connectionsOpen = 0
    private var connectionsTotal = 0
    private var connectionsRefused = 0
    private var connectionsShed = 0
    private var connectionsRevoked = 0
    private var asksAbandoned = 0
    private var factsStored = 0
    private var factsDuplicate = 0
    private var factsRejected = 0
    private var timeSteps = 0
    private var commitFailures = 0
    private var tokensGenerated = 0
    private var promptCacheHits = 0
    private var promptCacheMisses = 0
    /// Torn log tails cut at open (kept in torn/) and their bytes: normal after a crash
    /// during an append, but an operator must see them.
    private var tornTails = 0
    private var tornTailBytes = 0
    public let started = Date()

    struct Histogram {
        let bounds: [Double]
        var counts: [Int]
        var sum = 0.0
        var count = 0
        init(bounds: [Double]) { self.bounds = bounds; counts = Array(repeating: 0, count: bounds.count) }
        mutating func observe(_ x: Double) {
            for (i, b) in bounds.enumerated() where x <= b { counts[i] += 1 }
            sum += x
            count += 1
        }
    }

    public init() {}

    public func request(_ op: String) { lock.withLock { requests[op, default: 0] += 1 } }
    public func error(_ code: String) { lock.withLock { errors[code, default: 0] += 1 } }
    public func asked(seconds: Double, tokens: Int) {
        lock.withLock { askLatency.observe(seconds); tokensGenerated += tokens }
    }
    public func connectionOpened() { lock.withLock { connectionsOpen += 1; connectionsTotal += 1 } }
    public func connectionClosed() { lock.withLock { connectionsOpen -= 1 } }
    public func connectionRefused() { lock.withLock { connectionsRefused += 1 } }
    /// An idle connection closed to make room for a new client at `limits.maxClients`.
    public func connectionShed() { lock.withLock { connectionsShed += 1 } }
    /// An open connection closed because a reload removed its uid from `socket.allowedUIDs`.
    public func connectionRevoked() { lock.withLock { connectionsRevoked += 1 } }
    /// An ask whose client hung up before its reply: generation stopped after `tokens`.
    public func askAbandoned(tokens: Int) { lock.withLock { asksAbandoned += 1; tokensGenerated += tokens } }
    public var openConnections: Int { lock.withLock { connectionsOpen } }
    public func ingested(stored: Int, duplicates: Int, rejected: Int, steps: Int) {
        lock.withLock { factsStored += stored; factsDuplicate += duplicates; factsRejected += rejected; timeSteps += steps }
    }
    /// The repository's open cut a torn tail of `bytes` from the log.
    public func tornTail(bytes: Int) { lock.withLock { tornTails += 1; tornTailBytes += bytes } }
    public func commitFailed() { lock.withLock { commitFailures += 1 } }
    /// An ask with a continuous prompt whose keys and values were kept (hit) or computed.
    public func promptCache(hit: Bool) { lock.withLock { if hit { promptCacheHits += 1 } else { promptCacheMisses += 1 } } }

    /// Totals for `stats` replies.
    public func summary() -> StatsReply.Worker {
        lock.withLock {
            var w = StatsReply.Worker(requests: requests, errors: errors)
            (w.connectionsOpen, w.connectionsTotal, w.connectionsRefused) = (connectionsOpen, connectionsTotal, connectionsRefused)
            (w.connectionsShed, w.connectionsRevoked, w.asksAbandoned) = (connectionsShed, connectionsRevoked, asksAbandoned)
            (w.factsStored, w.factsDuplicate, w.factsRejected) = (factsStored, factsDuplicate, factsRejected)
            (w.timeSteps, w.commitFailures, w.asks, w.tokensGenerated) = (timeSteps, commitFailures, askLatency.count, tokensGenerated)
            (w.promptCacheHits, w.promptCacheMisses) = (promptCacheHits, promptCacheMisses)
            (w.tornTails, w.tornTailBytes) = (tornTails, tornTailBytes)
            w.uptimeSeconds = Date().timeIntervalSince(started)
            return w
        }
    }

    /// The Prometheus text format (version 0.0.4). `gauges` adds repository gauges.
    public func prometheus(gauges: [(name: String, help: String, value: Double)],
                           counters extra: [(name: String, help: String, value: Int)] = []) -> String {
        lock.withLock {
            var s = ""
            func family(_ name: String, _ type: String, _ help: String) { s += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n" }
            func num(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e15 ? String(Int64(x)) : String(x) }
            family("recipe_requests_total", "counter", "Socket requests by operation.")
            for (op, n) in requests.sorted(by: { $0.key < $1.key }) { s += "recipe_requests_total{op=\"\(op)\"} \(n)\n" }
            family("recipe_request_errors_total", "counter", "Error replies by code.")
            for (code, n) in errors.sorted(by: { $0.key < $1.key }) { s += "recipe_request_errors_total{code=\"\(code)\"} \(n)\n" }
            family("recipe_ask_seconds", "histogram", "Latency of ask requests.")
            for (b, n) in zip(askLatency.bounds, askLatency.counts) { s += "recipe_ask_seconds_bucket{le=\"\(b)\"} \(n)\n" }
            s += "recipe_ask_seconds_bucket{le=\"+Inf\"} \(askLatency.count)\n"
            s += "recipe_ask_seconds_sum \(askLatency.sum)\nrecipe_ask_seconds_count \(askLatency.count)\n"
            let counters: [(String, String, Int)] = [
                ("recipe_tokens_generated_total", "Tokens generated by ask.", tokensGenerated),
                ("recipe_connections_total", "Client connections accepted.", connectionsTotal),
                ("recipe_connections_refused_total", "Connections refused (limit or peer uid).", connectionsRefused),
                ("recipe_connections_shed_total", "Idle connections closed to make room for a new client.", connectionsShed),
                ("recipe_connections_revoked_total", "Open connections closed when a reload removed their uid.", connectionsRevoked),
                ("recipe_asks_abandoned_total", "Asks whose client hung up before the answer was complete.", asksAbandoned),
                ("recipe_facts_stored_total", "Fact operations stored (add, supersede, retract).", factsStored),
                ("recipe_facts_duplicate_total", "Facts skipped as duplicates.", factsDuplicate),
                ("recipe_facts_rejected_total", "Fact lines rejected by the parser.", factsRejected),
                ("recipe_time_steps_total", "Time steps committed by the worker.", timeSteps),
                ("recipe_commit_failures_total", "Time steps whose commit failed (retried).", commitFailures),
                ("recipe_prompt_cache_hits_total", "Asks whose prompt's keys and values were kept.", promptCacheHits),
                ("recipe_prompt_cache_misses_total", "Asks whose prompt's keys and values were not in memory.", promptCacheMisses),
                ("recipe_torn_tails_total", "Torn fact-log tails cut at open and kept in torn/.", tornTails),
                ("recipe_torn_tail_bytes_total", "Bytes of the torn tails cut at open.", tornTailBytes),
            ]
            for (name, help, v) in counters + extra { family(name, "counter", help); s += "\(name) \(v)\n" }
            family("recipe_connections_open", "gauge", "Client connections open now.")
            s += "recipe_connections_open \(connectionsOpen)\n"
            family("recipe_uptime_seconds", "gauge", "Seconds since the worker started.")
            s += "recipe_uptime_seconds \(Date().timeIntervalSince(started))\n"
            for g in gauges { family(g.name, "gauge", g.help); s += "\(g.name) \(num(g.value))\n" }
            return s
        }
    }
}
