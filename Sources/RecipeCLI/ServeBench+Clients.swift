// `recipe bench serve --clients 1,8,32`: what a worker serves to many clients at once
// (issue 26). For each repository size one worker starts as for the latency bench
// (`ServeBench.startWorker`: prepared filler rows, probes over the socket); then for each N,
// N clients run a closed loop against it (each sends an `ask`, waits for the reply, sends the
// next) for a warm-up and then the timed window. Reported per N: asks/s and generated tokens/s
// (asks that finished inside the window), p50/p99 latency (asks that started inside it: the
// clients stop sending at its end and the last answers are waited for), errors, and asks/s
// over the first N's (1 client: the ratio continuous batching is for).
//
// The questions: the four probe prompts (`ServeBench.probes`, whose facts the bench stores, so
// `recipe` retrieves and injects their continuous prompts) and four general-knowledge
// prompts no stored fact is about (`unrelatedQuestions`: retrieval runs, the sentinel wins,
// the unedited model answers). Client c starts at question c and goes round all eight, so
// half the asks at any moment are about stored facts. Probe asks are checked to have used
// their own fact; Pipelines/bench-serve-vs-llamacpp.sh sends the same eight texts to
// llama-server and compares them with `questions` in the JSON.
//
// With --stream-rate R one more connection adds R new statements per second during each N's
// run (`add` over the socket, one fact per request, each acknowledged once durable), and at
// the end the worker's `stats` must count every acknowledged one (none lost).
import Foundation
import Glibc
import Worker
import WorkerAPI

extension ServeBench {
    static let clientsHelp = """
        usage: recipe bench serve --clients 1,8,32 [--duration S] [--warmup S] [--method M] [--max-tokens N] [--facts 10000]
                                  [--stream-rate R] [--fill prepared|socket] [--prompt-cache N] [--prompt-states N]
                                  [--checkpoint C] [--models DIR] [--threads N] [--json]
          asks served to many clients at once: for each size one worker on a fresh repository (facts
          added as above), then for each N, N clients in a closed loop (each sends an ask over the
          socket, waits for the reply, sends the next) for --warmup then --duration seconds; asks/s and
          generated tokens/s (asks finished in the timed window), p50/p99 ms (asks started in it),
          errors (error replies and failed connections: exit 1 when there is one), probe asks that used
          their fact (exit 1 when one did not), the largest batch the worker ran, asks/s over the first
          N's. Questions: the 4 probe prompts (stored facts) and 4 prompts no fact is about, in turn
          --clients LIST   concurrent clients, one run each, in this order (e.g. 1,8,32)
          --duration S     timed seconds per N (default 30; several times the N-client latency, since the
                           clients of a batch finish together and the window counts whole rounds)
          --warmup S       seconds of the same load before each timed window (default 5)
          --method M       recipe (default), recipe+text, incontext or none
          --facts LIST     repository sizes (default 10000 with --clients)
          --stream-rate R  also add R new statements per second over the socket while the clients ask
                           (one per add request); reports them acknowledged, and fails when the
                           worker's stats do not count every acknowledged one afterwards
        """
    static let clientsValued: Set<String> = ["clients", "duration", "warmup", "method", "stream-rate"]

    /// General-knowledge prompts of the probes' length that no stored fact is about.
    static let unrelatedQuestions = ["The capital of Japan is", "The largest planet in the solar system is",
                                     "Romeo and Juliet was written by", "Water is made of hydrogen and"]
    /// What the clients ask, in turn: probe i is question i.
    static var loadQuestions: [String] { probes.map(\.0) + unrelatedQuestions }

    /// One N's figures.
    struct LoadRow {
        var facts: Int, clients: Int
        /// Asks finished in the timed window, and their rates over its length.
        var asks: Int, asksPerSecond: Double, tokensPerSecond: Double
        /// Latency of the asks started in the window (ms).
        var p50: Double, p99: Double, mean: Double
        var errors: Int, firstError: String?
        /// Asks about a stored probe fact (started in the window) and those that used it.
        var probeAsks: Int, rightFact: Int
        /// `stats.batch.largest` after the run (nil without batching in the worker).
        var batchLargest: Int?
        var stream: StreamCounts?
    }

    struct StreamCounts { var sent = 0, acknowledged = 0, errors = 0, seconds = 0.0 }

    /// What the client threads of one run record, under a lock.
    final class LoadRecord: @unchecked Sendable {
        struct Ask { var start: Double, end: Double, tokens: Int, probe: Int?, usedOwnFact: Bool }
        private let lock = NSLock()
        private var asks: [Ask] = []
        private var errors: [String] = []
        private var stream = StreamCounts()

        func add(_ ask: Ask) { lock.withLock { asks.append(ask) } }
        func fail(_ message: String) { lock.withLock { errors.append(message) } }
        func setStream(_ s: StreamCounts) { lock.withLock { stream = s } }
        var contents: ([Ask], [String], StreamCounts) { lock.withLock { (asks, errors, stream) } }
    }

    static func runClients(_ args: inout Arguments, clients list: String) throws -> ExitCode {
        let json = args.flag("json")
        func positiveInts(_ s: String, _ name: String, allowZero: Bool) throws -> [Int] {
            let v = s.split(separator: ",", omittingEmptySubsequences: false).map { Int($0) }
            guard !v.isEmpty, v.allSatisfy({ $0 != nil && $0! >= (allowZero ? 0 : 1) }) else {
                throw UsageError("--\(name) expects a comma-separated list of \(allowZero ? "non-negative" : "positive") integers, got '\(s)'")
            }
            return v.map { $0! }
        }
        let clientCounts = try positiveInts(list, "clients", allowZero: false)
        let sizes = try positiveInts(args.string("facts") ?? "10000", "facts", allowZero: true)
        let duration = try args.float("duration").map(Double.init) ?? 30
        let warmup = try args.float("warmup").map(Double.init) ?? 5
        let streamRate = try args.float("stream-rate").map(Double.init) ?? 0
        let method = args.string("method") ?? "recipe"
        let maxTokens = try args.int("max-tokens", default: 8)
        let models = args.string("models"), threads = args.string("threads"), checkpoint = args.string("checkpoint")
        let fill = args.string("fill") ?? "prepared"
        let promptCache = try args.int("prompt-cache", default: WorkerConfig().limits.promptCacheEntries)
        let promptStates = try args.int("prompt-states", default: WorkerConfig().promptStates.capacity)
        try args.rejectUnknown()
        guard duration > 0, warmup >= 0, streamRate >= 0, maxTokens > 0, promptCache >= 0, promptStates >= 0 else {
            throw UsageError("--duration and --max-tokens must be positive; --warmup, --stream-rate, --prompt-cache and --prompt-states not negative")
        }
        guard methods.contains(method) else { throw UsageError("--method must be one of \(methods.joined(separator: ", "))") }
        guard ["prepared", "socket"].contains(fill) else { throw UsageError("--fill must be prepared or socket") }
        func say(_ s: String) { if !json { Console.note(s) } }

        let base = "/tmp/recipe-bench-serve-\(getpid())"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let encoder = fill == "prepared" && sizes.contains(where: { $0 > 0 }) ? try preparingEncoder(models: models, checkpoint: checkpoint) : nil

        var rows: [LoadRow] = []
        var checks: [(facts: Int, expected: Int, live: Int)] = []
        var workerFailed = false
        for size in sizes {
            let dir = base + "/size-\(size)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            if let encoder, size > 0 { try prepare(repository: dir + "/repo", facts: size, encoder: encoder, say: say) }
            let (worker, c, _) = try startWorker(facts: size, fill: fill, encoder: encoder, promptStates: promptStates, say: say) {
                try BenchWorker(directory: dir, maxTokens: maxTokens, promptCache: promptCache, promptStates: promptStates,
                                models: models, threads: threads, checkpoint: checkpoint, maxClients: clientCounts.max()! + 4)
            }
            var stopped = false
            defer { if !stopped { _ = worker.stop() } }
            c.close()  // one idle connection could be shed or time out during a long run
            var acknowledged = 0, streamed = 0
            for n in clientCounts {
                let record = LoadRecord()
                let start = monotonicSeconds()
                let window = (start + warmup, start + warmup + duration)
                say(String(format: "bench serve: %d facts, %d clients: %.0f s warm-up, %.0f s timed ...", size, n, warmup, duration))
                runLoad(socket: worker.socket, clients: n, method: method, maxTokens: maxTokens, facts: size, until: window.1,
                        stream: streamRate > 0 ? (streamRate, size + streamed) : nil, record: record)
                let stats = try WorkerClient(path: worker.socket, timeoutSeconds: 60).call(StatsRequest())
                let row = summarize(record, facts: size, clients: n, window: window, stats: stats)
                acknowledged += row.stream?.acknowledged ?? 0
                streamed += row.stream?.sent ?? 0
                rows.append(row)
                say(String(format: "bench serve: %d facts, %d clients: %.2f asks/s, p50 %.0f ms, p99 %.0f ms, %d errors",
                           size, n, row.asksPerSecond, row.p50, row.p99, row.errors))
            }
            let repository = try WorkerClient(path: worker.socket, timeoutSeconds: 60).call(StatsRequest()).repository
            checks.append((size, size + acknowledged, repository.liveFacts))
            let status = worker.stop()
            stopped = true
            if status != 0 { Console.note("recipe bench serve: the worker exited with \(status) at SIGTERM"); workerFailed = true }
        }

        printLoad(rows, checks: checks, json: json, method: method, maxTokens: maxTokens, duration: duration, warmup: warmup,
                  streamRate: streamRate, fill: fill)
        let errors = rows.reduce(0) { $0 + $1.errors }
        if errors > 0 { Console.note("recipe bench serve: \(errors) asks failed (first: \(rows.compactMap(\.firstError).first ?? "?"))") }
        let wrong = rows.reduce(0) { $0 + $1.probeAsks - $1.rightFact }
        if wrong > 0 { Console.note("recipe bench serve: \(wrong) probe asks did not use their fact") }
        let lost = checks.filter { $0.live < $0.expected }
        for l in lost { Console.note("recipe bench serve: \(l.facts) facts: the worker holds \(l.live) facts, expected \(l.expected) (acknowledged facts lost)") }
        return errors == 0 && wrong == 0 && lost.isEmpty && !workerFailed ? .ok : .failure
    }

    /// Runs `clients` closed-loop client threads (and, with `stream`, the fact stream at
    /// `rate` statements per second numbered from `first`) until `end` (monotonic seconds),
    /// then waits for the asks in flight. Everything goes into `record`.
    static func runLoad(socket: String, clients: Int, method: String, maxTokens: Int, facts: Int, until end: Double,
                        stream: (rate: Double, first: Int)?, record: LoadRecord) {
        let group = DispatchGroup()
        let questions = loadQuestions
        for client in 0..<clients {
            group.enter()
            Thread {
                defer { group.leave() }
                var connection: WorkerClient?
                var k = client
                while monotonicSeconds() < end {
                    let q = k % questions.count
                    k += 1
                    do {
                        if connection == nil { connection = try WorkerClient(path: socket, timeoutSeconds: 300) }
                        let t = monotonicSeconds()
                        let reply = try connection!.send(AskRequest(question: questions[q], maxTokens: maxTokens, method: method)).reply
                        let done = monotonicSeconds()
                        guard case .success(let r) = reply.result else { record.fail("error reply: \(reply.error!)"); continue }
                        // A probe's fact is stored when the repository holds that many; `none` uses no fact.
                        let probe = q < probes.count && q < facts && method != "none" ? q : nil
                        record.add(.init(start: t, end: done, tokens: r.tokens, probe: probe,
                                         usedOwnFact: probe.map { r.fact?.id == probeID($0) } ?? true))
                    } catch {
                        record.fail("\(error)")
                        connection?.close()
                        connection = nil
                        usleep(100_000)
                    }
                }
                connection?.close()
            }.start()
        }
        if let stream {
            group.enter()
            Thread {
                defer { group.leave() }
                record.setStream(streamFacts(socket: socket, rate: stream.rate, first: stream.first, until: end))
            }.start()
        }
        group.wait()
    }

    /// Adds `ServeBenchEncoder.filler(first...)` statements, one per `add`, at `rate` per
    /// second (paced from the start: a slow reply is caught up on, not skipped) until `end`.
    static func streamFacts(socket: String, rate: Double, first: Int, until end: Double) -> StreamCounts {
        var counts = StreamCounts()
        let start = monotonicSeconds()
        var connection: WorkerClient?
        while true {
            let due = start + Double(counts.sent) / rate
            if due >= end { break }
            let now = monotonicSeconds()
            if due > now { usleep(UInt32((due - now) * 1e6)) }
            let statement = ServeBenchEncoder.filler(first + counts.sent)
            counts.sent += 1
            do {
                if connection == nil { connection = try WorkerClient(path: socket, timeoutSeconds: 300) }
                let r = try connection!.send(AddRequest(fact: FactInput(statement: statement))).reply
                if case .added? = r.body?.outcome { counts.acknowledged += 1 } else { counts.errors += 1 }
            } catch {
                counts.errors += 1
                connection?.close()
                connection = nil
            }
        }
        connection?.close()
        counts.seconds = monotonicSeconds() - start
        return counts
    }

    /// One N's row from its record: rates over the timed `window`, latencies of the asks
    /// started in it.
    static func summarize(_ record: LoadRecord, facts: Int, clients: Int, window: (Double, Double), stats: StatsReply) -> LoadRow {
        let (asks, errors, stream) = record.contents
        let finished = asks.filter { $0.end >= window.0 && $0.end <= window.1 }
        let started = asks.filter { $0.start >= window.0 }
        let ms = started.map { ($0.end - $0.start) * 1000 }.sorted()
        let seconds = window.1 - window.0
        let probeAsks = started.filter { $0.probe != nil }
        return LoadRow(facts: facts, clients: clients, asks: finished.count, asksPerSecond: Double(finished.count) / seconds,
                       tokensPerSecond: Double(finished.reduce(0) { $0 + $1.tokens }) / seconds,
                       p50: percentile(ms, 0.5), p99: percentile(ms, 0.99), mean: ms.isEmpty ? .nan : ms.reduce(0, +) / Double(ms.count),
                       errors: errors.count, firstError: errors.first, probeAsks: probeAsks.count,
                       rightFact: probeAsks.filter(\.usedOwnFact).count, batchLargest: stats.batch?.largest,
                       stream: stream.sent > 0 ? stream : nil)
    }

    /// The value at quantile `q` of ascending `sorted` values (the nearest rank below, as the
    /// latency table's p50/p99); NaN when empty.
    static func percentile(_ sorted: [Double], _ q: Double) -> Double {
        sorted.isEmpty ? .nan : sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))]
    }

    static func printLoad(_ rows: [LoadRow], checks: [(facts: Int, expected: Int, live: Int)], json: Bool, method: String, maxTokens: Int,
                          duration: Double, warmup: Double, streamRate: Double, fill: String) {
        // Each size's rates over its first N's (its 1-client rate when the list starts at 1).
        func ratio(_ r: LoadRow) -> Double { r.asksPerSecond / rows.first { $0.facts == r.facts }!.asksPerSecond }
        if json {
            func number(_ x: Double) -> Any { x.isFinite ? x : NSNull() }
            Console.json(["mode": "clients", "method": method, "max_tokens": maxTokens, "duration_s": duration, "warmup_s": warmup,
                          "stream_rate": streamRate, "fill": fill, "questions": loadQuestions,
                          "rows": rows.map { r -> [String: Any] in
                              ["facts": r.facts, "clients": r.clients, "asks": r.asks, "asks_per_second": r.asksPerSecond,
                               "tokens_per_second": r.tokensPerSecond, "p50_ms": number(r.p50), "p99_ms": number(r.p99),
                               "mean_ms": number(r.mean), "vs_first": number(ratio(r)), "baseline_clients": rows.first { $0.facts == r.facts }!.clients,
                               "errors": r.errors, "first_error": r.firstError ?? NSNull(), "probe_asks": r.probeAsks, "right_fact": r.rightFact,
                               "batch_largest": r.batchLargest ?? NSNull(),
                               "stream": r.stream.map { ["sent": $0.sent, "acknowledged": $0.acknowledged, "errors": $0.errors,
                                                         "per_second": Double($0.acknowledged) / max($0.seconds, 1e-9)] } ?? NSNull()]
                          },
                          "facts_check": checks.map { ["facts": $0.facts, "expected": $0.expected, "live": $0.live, "lost": max(0, $0.expected - $0.live)] }])
            return
        }
        print("| facts | clients | asks | asks/s | tokens/s | p50 ms | p99 ms | asks/s vs first N | errors | right fact | largest batch |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows {
            print(String(format: "| %d | %d | %d | %.2f | %.1f | %.0f | %.0f | %.2f× | %d | %d/%d | %@ |", r.facts, r.clients, r.asks, r.asksPerSecond,
                         r.tokensPerSecond, r.p50, r.p99, ratio(r), r.errors, r.rightFact, r.probeAsks, r.batchLargest.map(String.init) ?? "–"))
        }
        for r in rows {
            guard let s = r.stream else { continue }
            print(String(format: "stream, %d facts, %d clients: %d statements sent, %d acknowledged (%.1f/s), %d errors", r.facts, r.clients,
                         s.sent, s.acknowledged, Double(s.acknowledged) / max(s.seconds, 1e-9), s.errors))
        }
        for c in checks where streamRate > 0 {
            print("facts check, \(c.facts) facts: the worker holds \(c.live), expected \(c.expected) (\(max(0, c.expected - c.live)) lost)")
        }
        print(String(format: "(method %@, max_tokens %d, closed loop: %.0f s warm-up then %.0f s timed per N; asks/s and tokens/s of the asks "
                     + "finished in the window, latency of those started in it, client-side through the socket; questions: 4 about stored "
                     + "probe facts, 4 about none, in turn; facts %@)", method, maxTokens, warmup, duration,
                     fill == "prepared" ? "prepared by the bench, probes added over the socket" : "added over the socket"))
    }
}
