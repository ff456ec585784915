// `recipe bench serve`: ask latency through the socket of a real worker, per method
// (none, incontext, recipe, recipe+text) and repository size. For each size it starts `recipe serve`
// (this binary) on a fresh repository holding that many facts, times asks client-side
// (so the numbers include the socket, JSON, query encoding, retrieval and generation),
// checks that every ask used the fact it should, and stops the worker with SIGTERM.
// Goal of the issue: recipe adds at most 10% over none and is faster than incontext
// (whose prompt is longer).
//
// How the facts get there (--fill):
//   prepared  (default) the bench writes the filler rows itself before starting the worker,
//             derived from a sample of really encoded statements (`ServeBenchEncoder` says
//             why that is honest for latency; 10^5 facts take seconds instead of a quarter
//             of an hour), then adds the probe facts over the socket like any new fact.
//   socket    every fact goes through the worker's `add` over the socket and the real
//             encoder (also reports the ingest rate; ~130 facts/s on 2 cores).
// Either way the probes are committed while the worker runs, so with prompt states on it
// computes their keys and values at ingestion (`PromptWarmer`), as it would for any new
// fact; the bench waits for that before timing.
//
// With --clients the bench measures many clients at once instead (ServeBench+Clients.swift).
//
// Dispatch: `BenchCommand` hands `recipe bench serve ...` to `ServeBench.run`.
import Foundation
import Glibc
import Models
import Posix
import Recipe
import Storage
import Worker
import WorkerAPI

enum ServeBench {
    static let help = """
        usage: recipe bench serve [--facts 0,100000] [--repeats N] [--max-tokens N] [--fill prepared|socket]
                                  [--prompt-cache N] [--prompt-states N] [--keep-page-cache] [--checkpoint FILE|untrained]
                                  [--models DIR] [--threads N] [--json]
          ask latency through a real worker's socket: for each size, a worker on a fresh repository
          of that many facts, --repeats asks per method (none, incontext, recipe, recipe+text, taking turns)
          after 2 warm-up rounds; p50/p99 ms, overhead over none (of the p50s, and the median of
          each round's ratio, which cancels a changing load), the worker's retrieval time,
          tokens per answer, asks that used the right fact (exit 1 when one did not, or when the
          worker does not exit 0 at SIGTERM)
          --facts LIST     repository sizes (default 0,100000)
          --repeats N      timed asks per method and size (default 20)
          --max-tokens N   tokens per answer (default 8)
          --fill MODE      prepared (default): filler rows written by the bench before the worker
                           starts, derived from 256 really encoded ones, the probe facts added over the
                           socket; socket: every fact added over the socket (real encoder, ingest rate)
          --prompt-cache N the worker's limits.promptCacheEntries (default 256); the bench asks 4
                           questions in turn, so with a cache their prompts' keys and values are reused
                           from memory, with 0 every ask reads them from disk or computes them
          --prompt-states N the worker's promptStates.capacity (default 4096): the probes' prompt keys
                           and values are computed as they are committed and kept on disk; with
                           --prompt-cache 0 the bench drops that file from the page cache before each
                           recipe ask, so they come from the disk itself; 0: none kept, every ask
                           computes its prompt's rows of the prefill
          --keep-page-cache do not drop the state file from the page cache: the states are read from
                           memory, as for facts written recently
          --checkpoint C   editor checkpoint for the worker (default: the shipped one)

        """ + clientsHelp
    static let valued: Set<String> = Set(["facts", "repeats", "max-tokens", "models", "threads", "fill", "checkpoint", "prompt-cache",
                                          "prompt-states"]).union(clientsValued)

    struct Row: Codable {
        var facts: Int
        var method: String
        var p50: Double
        var p99: Double
        var mean: Double
        /// The worker's `retrieval_ms` (query encoding + search), median.
        var retrievalP50: Double
        /// Tokens generated per ask, mean (an answer may stop early at end of text).
        var tokens: Double
        /// Median over rounds of (this ask / the same round's none ask) - 1: the overhead
        /// with the load of each moment cancelled out as far as it can be.
        var pairedOverhead: Double
        /// Timed asks that used the fact they should (the probe's own for incontext and
        /// recipe once facts are loaded; none otherwise).
        var rightFact: Int
        var asks: Int
    }

    /// The questions the bench asks, each the prompt of a fact it stores.
    static let probes = [("Toko Yasuda plays the", "violin", "Toko Yasuda"),
                         ("Giovanni Guidetti has a citizenship from", "Frankfurt", "Giovanni Guidetti"),
                         ("The Eiffel Tower is located in", "Rome", "Eiffel Tower"),
                         ("Final Cut Studio, developed by", "Microsoft", "Final Cut Studio")]
    static func probeID(_ i: Int) -> String { "probe-\(i)" }

    static func run(_ args: inout Arguments) throws -> ExitCode {
        if let clients = args.string("clients") { return try runClients(&args, clients: clients) }  // ServeBench+Clients.swift
        let json = args.flag("json")
        let sizes = try (args.string("facts") ?? "0,100000").split(separator: ",").map { s -> Int in
            guard let n = Int(s), n >= 0 else { throw UsageError("--facts expects non-negative integers") }
            return n
        }
        let repeats = try args.int("repeats", default: 20)
        let maxTokens = try args.int("max-tokens", default: 8)
        let models = args.string("models"), threads = args.string("threads"), checkpoint = args.string("checkpoint")
        let fill = args.string("fill") ?? "prepared"
        let promptCache = try args.int("prompt-cache", default: WorkerConfig().limits.promptCacheEntries)
        let promptStates = try args.int("prompt-states", default: WorkerConfig().promptStates.capacity)
        let keepPageCache = args.flag("keep-page-cache")
        try args.rejectUnknown()
        guard repeats > 0, maxTokens > 0, promptCache >= 0, promptStates >= 0 else {
            throw UsageError("--repeats and --max-tokens must be positive, --prompt-cache and --prompt-states not negative")
        }
        guard ["prepared", "socket"].contains(fill) else { throw UsageError("--fill must be prepared or socket") }
        func say(_ s: String) { if !json { Console.note(s) } }

        let base = "/tmp/recipe-bench-serve-\(getpid())"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }

        // The worker's own encoder, for the prepared repositories (loaded once).
        let encoder = fill == "prepared" && sizes.contains(where: { $0 > 0 }) ? try preparingEncoder(models: models, checkpoint: checkpoint) : nil

        var rows: [Row] = []
        var ingest: [[String: Any]] = []
        for size in sizes {
            let dir = base + "/size-\(size)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            if let encoder, size > 0 {
                let start = Date()
                try prepare(repository: dir + "/repo", facts: size, encoder: encoder, say: say)
                say(String(format: "bench serve: %d facts prepared in %.1f s", size, Date().timeIntervalSince(start)))
            }
            let (worker, c, seconds) = try startWorker(facts: size, fill: fill, encoder: encoder, promptStates: promptStates, say: say) {
                try BenchWorker(directory: dir, maxTokens: maxTokens, promptCache: promptCache, promptStates: promptStates,
                                models: models, threads: threads, checkpoint: checkpoint)
            }
            var stopped = false
            defer { if !stopped { _ = worker.stop() } }
            if fill == "socket" && size > 0 {
                ingest.append(["facts": size, "seconds": seconds, "facts_per_second": Double(size) / max(seconds, 1e-9)])
            }
            // Every ask cold: no prompt in memory, and the prompt states (if kept) read from disk.
            let dropStates = promptCache == 0 && promptStates > 0 && !keepPageCache ? { dropPageCache(worker.promptStatesPath) } : {}
            for row in try measure(c, facts: size, repeats: repeats, maxTokens: maxTokens, beforeRecipe: dropStates) {
                rows.append(row)
                say(String(format: "bench serve: %d facts, %@: p50 %.1f ms", size, row.method, row.p50))
            }
            c.close()
            let status = worker.stop()
            stopped = true
            guard status == 0 else { Console.note("recipe bench serve: the worker exited with \(status) at SIGTERM"); return .failure }
        }

        if json {
            Console.json(["max_tokens": maxTokens, "repeats": repeats, "fill": fill, "prompt_cache": promptCache,
                          "prompt_states": promptStates, "keep_page_cache": keepPageCache, "ingest": ingest,
                          "rows": rows.map { ["facts": $0.facts, "method": $0.method, "p50_ms": $0.p50, "p99_ms": $0.p99, "mean_ms": $0.mean,
                                              "retrieval_p50_ms": $0.retrievalP50, "tokens_mean": $0.tokens, "paired_overhead": $0.pairedOverhead, "right_fact": $0.rightFact, "asks": $0.asks] }])
        } else {
            print("| facts | method | ask p50 ms | ask p99 ms | vs none (p50) | vs none (paired) | retrieval p50 ms | tokens | right fact |")
            print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
            for r in rows {
                let none = rows.first { $0.facts == r.facts && $0.method == "none" }!.p50
                print(String(format: "| %d | %@ | %.1f | %.1f | %+.1f%% | %+.1f%% | %.2f | %.1f | %d/%d |", r.facts, r.method, r.p50, r.p99,
                             (r.p50 / none - 1) * 100, r.pairedOverhead * 100, r.retrievalP50, r.tokens, r.rightFact, r.asks))
            }
            for i in ingest {
                print(String(format: "\ningest: %d facts over the socket in %.1f s (%.0f facts/s)", i["facts"] as! Int,
                             i["seconds"] as! Double, i["facts_per_second"] as! Double))
            }
            print("(max_tokens \(maxTokens), \(repeats) asks per row after 2 warm-up rounds, the methods taking turns; client-side latency through the socket; "
                  + "prompt cache \(promptCache) entries; prompt states \(promptStates)"
                  + (promptCache == 0 && promptStates > 0
                      ? (keepPageCache ? " (read from the page cache)" : " (read from disk: dropped from the page cache before each recipe ask)") : "") + "; "
                  + "facts \(fill == "prepared" ? "prepared by the bench (filler rows derived from 256 really encoded ones; probes added over the socket)" : "added over the socket"))")
        }
        guard rows.allSatisfy({ $0.rightFact == $0.asks }) else {
            Console.note("recipe bench serve: some asks did not use the fact they should (right fact column): the rows do not compare like with like")
            return .failure
        }
        return .ok
    }

    /// Launches a worker (`launch`) on a fresh repository already prepared with the filler
    /// rows (or, with `fill` socket, empty), adds the rest of `size` facts over the socket,
    /// waits for the probes' prompt states, and checks that it holds `size` facts under the
    /// bench encoder's fingerprint: the worker, an open connection and the seconds the socket
    /// adds took. A failure stops the worker before it is thrown.
    static func startWorker(facts size: Int, fill: String, encoder: ServeBenchEncoder?, promptStates: Int, say: (String) -> Void,
                            launch: () throws -> BenchWorker) throws -> (BenchWorker, WorkerClient, Double) {
        let worker = try launch()
        do {
            let c = try worker.connect()
            var seconds = 0.0
            if size > 0 {
                seconds = try addOverSocket(c, facts: size, fillers: fill == "socket", say: say)
                if promptStates > 0 { try waitForPromptStates(c, count: min(size, probes.count)) }
            }
            let repository = try c.call(StatsRequest()).repository
            guard repository.liveFacts == size else {
                throw UsageError("the worker holds \(repository.liveFacts) facts, expected \(size)")
            }
            if let encoder, size > 0, repository.fingerprint != encoder.fingerprint {
                throw UsageError("the worker's encoder fingerprint differs from the bench's: the repository was re-encoded")
            }
            return (worker, c, seconds)
        } catch {
            _ = worker.stop()
            throw error
        }
    }

    /// The worker's own encoder behind the prepared filler rows (seed 1 and the checkpoint
    /// argument as `recipe serve` passes them).
    static func preparingEncoder(models: String?, checkpoint: String?) throws -> ServeBenchEncoder {
        let (real, _) = try EditorCheckpoint.factEncoder(ModelPaths(directory: models), checkpoint: checkpoint, seed: 1,
                                                         refinement: WorkerConfig().refinement)
        return try ServeBenchEncoder(real: real)
    }

    /// Writes a repository of the filler rows of `facts` facts (all but the probes, which
    /// the worker gets over the socket).
    static func prepare(repository: String, facts: Int, encoder: ServeBenchEncoder, say: (String) -> Void) throws {
        let repo = try Repository(path: repository, encoder: encoder)
        let fillers = facts - min(facts, probes.count)
        var i = 0
        while repo.liveCount < fillers {
            let n = min(10_000, fillers - repo.liveCount)
            _ = try repo.commit((i..<(i + n)).map { .add(statement: ServeBenchEncoder.filler($0)) })
            i += n
            say("bench serve: \(repo.liveCount)/\(fillers) filler facts written")
        }
        try repo.close()
    }

    /// Adds the probes, then (with `fillers`) filler facts until `size` are live, over the
    /// socket (1000 per request); the seconds it took.
    static func addOverSocket(_ c: WorkerClient, facts size: Int, fillers: Bool, say: (String) -> Void) throws -> Double {
        let start = Date()
        var live = fillers ? 0 : size - min(size, probes.count), i = 0
        var batch: [FactInput] = probes.prefix(size).enumerated().map { i, p in
            FactInput(prompt: p.0, target: p.1, subject: p.2, id: probeID(i))
        }
        while live < size {
            while batch.count < min(1000, size - live) {
                batch.append(FactInput(statement: ServeBenchEncoder.filler(i)))
                i += 1
            }
            let r: CommitReply
            do { r = try c.call(AddRequest(facts: batch)) } catch let e as RequestError { throw UsageError("add failed: \(e)") }
            live += r.outcomes.filter { if case .added = $0 { return true } else { return false } }.count
            batch = []
            say("bench serve: \(live)/\(size) facts added over the socket")
        }
        return Date().timeIntervalSince(start)
    }

    /// Waits (up to 2 minutes) until the worker keeps the prompt states of `count` facts.
    static func waitForPromptStates(_ c: WorkerClient, count: Int) throws {
        for _ in 0..<1200 {
            if (try c.call(StatsRequest()).promptStates?.entries ?? 0) >= count { return }
            usleep(100_000)
        }
        throw UsageError("the worker did not compute the probes' prompt states within 2 minutes")
    }

    /// Writes back and drops `path`'s pages from the page cache, so its next read comes from
    /// the disk. Best effort (a failure leaves a warmer cache, not a wrong result).
    static func dropPageCache(_ path: String) {
        guard let file = try? FileDescriptor.openForReading(path) else { return }
        try? file.dataSync()
        try? file.dropCachedPages()
        try? file.close()
    }

    static let methods = ["none", "incontext", "recipe", "recipe+text"]

    /// Times `repeats` asks per method (after 2 warm-up rounds), cycling through the probe
    /// questions. The methods take turns ask by ask, so that a load that changes during the
    /// run (a shared machine) weighs on all of them alike.
    static func measure(_ c: WorkerClient, facts: Int, repeats: Int, maxTokens: Int, beforeRecipe: () -> Void) throws -> [Row] {
        var latency = [[Double]](repeating: [], count: methods.count), retrieval = latency, tokens = latency
        var right = [Int](repeating: 0, count: methods.count)
        for k in 0..<(repeats + 2) {
            let p = k % probes.count
            for (m, method) in methods.enumerated() {
                if method == "recipe" { beforeRecipe() }
                let t = Date()
                let reply = try c.send(AskRequest(question: probes[p].0, maxTokens: maxTokens, method: method)).reply
                let ms = Date().timeIntervalSince(t) * 1000
                guard case .success(let r) = reply.result else { throw UsageError("ask failed: \(reply.error!)") }
                guard k >= 2 else { continue }
                latency[m].append(ms)
                retrieval[m].append(r.retrievalMS)
                tokens[m].append(Double(r.tokens))
                let expected = method != "none" && p < facts ? probeID(p) : nil
                if r.fact?.id == expected { right[m] += 1 }
            }
        }
        return methods.indices.map { m in
            let l = latency[m].sorted(), r = retrieval[m].sorted()
            let paired = zip(latency[m], latency[0]).map { $0 / $1 - 1 }.sorted()
            return Row(facts: facts, method: methods[m], p50: l[l.count / 2], p99: l[min(l.count - 1, Int(Double(l.count) * 0.99))],
                       mean: l.reduce(0, +) / Double(l.count), retrievalP50: r[r.count / 2],
                       tokens: tokens[m].reduce(0, +) / Double(tokens[m].count), pairedOverhead: paired[paired.count / 2],
                       rightFact: right[m], asks: l.count)
        }
    }
}
