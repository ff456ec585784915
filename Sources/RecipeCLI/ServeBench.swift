// `recipe bench serve`: ask latency through the socket of a real worker, per method
// (none, incontext, recipe) and repository size. Starts `recipe serve` (this binary) on
// a temporary repository, fills it over the socket to each size in turn (reporting the
// ingest rate), and times asks client-side (so the numbers include the socket, JSON,
// retrieval and generation). Goal of the issue: recipe adds at most 10% over none and is
// faster than incontext (whose prompt is longer).
//
// Dispatch: `BenchCommand` hands `recipe bench serve ...` to `ServeBench.run`.
import Foundation
import Glibc
import Worker

enum ServeBench {
    static let help = """
    usage: recipe bench serve [--facts 0,100000] [--repeats N] [--max-tokens N] [--json] [--models DIR] [--threads N]

    Starts a worker on a temporary repository and, for each repository size in --facts
    (filled over the socket in batches, with the ingest rate reported), times --repeats
    asks per method (none, incontext, recipe) after a warm-up: p50/p99 latency in ms, and
    recipe's overhead over none. Prints a Markdown table (or one JSON object with --json).

      --facts LIST      repository sizes, increasing (default 0,100000)
      --repeats N       timed asks per method and size (default 20)
      --max-tokens N    tokens per answer (default 8)
    """
    static let valued: Set<String> = ["facts", "repeats", "max-tokens", "models", "threads"]

    struct Row: Codable {
        var facts: Int
        var method: String
        var p50: Double
        var p99: Double
        var mean: Double
    }

    static func run(_ args: inout Arguments) throws -> ExitCode {
        let json = args.flag("json")
        let sizes = try (args.string("facts") ?? "0,100000").split(separator: ",").map { s -> Int in
            guard let n = Int(s), n >= 0 else { throw UsageError("--facts expects non-negative integers") }
            return n
        }
        let repeats = try args.int("repeats", default: 20)
        let maxTokens = try args.int("max-tokens", default: 8)
        let models = args.string("models"), threads = args.string("threads")
        try args.rejectUnknown()
        guard repeats > 0, maxTokens > 0, sizes == sizes.sorted() else { throw UsageError("--repeats, --max-tokens positive; --facts increasing") }

        let dir = "/tmp/recipe-bench-serve-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let socket = dir + "/s.sock"
        var config: [String: Any] = [
            "repository": dir + "/repo", "inboxes": [], "pipes": [], "socket": ["path": socket],
            "limits": ["maxGenerationTokens": max(maxTokens, 8), "defaultGenerationTokens": min(maxTokens, 8),
                       "maxRequestBytes": 16 << 20, "maxClients": 4] as [String: Any],
            "logging": ["level": "warning"],
        ]
        if let models { config["models"] = models }
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: dir + "/worker.json"))
        let worker = Process()
        worker.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        worker.arguments = ["serve", "--config", dir + "/worker.json"] + (threads.map { ["--threads", $0] } ?? [])
        worker.standardError = FileHandle.standardError
        try worker.run()
        defer { kill(worker.processIdentifier, SIGTERM); worker.waitUntilExit() }
        var client: WorkerClient?
        for _ in 0..<1200 where client == nil {
            if !worker.isRunning { throw UsageError("the worker exited with \(worker.terminationStatus)") }
            client = try? WorkerClient(path: socket)
            if client == nil { usleep(100_000) }
        }
        guard let c = client else { throw UsageError("the worker did not start") }

        // The probe questions: prompts of facts present from the first size on (0 facts:
        // nothing is retrieved; the methods then differ only by the retrieval pass).
        let probes = [("The mother tongue of Danielle Darrieux is", "English"), ("The Eiffel Tower is located in", "Rome"),
                      ("Toko Yasuda plays the", "violin"), ("The official language of Brazil is", "Swedish")]
        var rows: [Row] = []
        var ingest: [[String: Any]] = []
        var live = 0
        func say(_ s: String) { if !json { Console.note(s) } }
        for size in sizes {
            if size > live {
                let start = Date()
                var batch: [[String: Any]] = []
                if live == 0 {
                    batch += probes.prefix(min(size, probes.count)).map { ["prompt": $0.0, "target": $0.1] }
                }
                var i = live
                while live < size {
                    while batch.count < min(1000, size - live) {
                        batch.append(["statement": "Synthetic entity \(i) has the property number \(i &* 2654435761 % 100_003)"])
                        i += 1
                    }
                    let r = try c.request(["op": "add", "facts": batch])
                    guard r["ok"] as? Bool == true else { throw UsageError("add failed: \(r)") }
                    live += (r["outcomes"] as? [[String: Any]] ?? []).filter { $0["status"] as? String == "added" }.count
                    batch = []
                    say("bench serve: \(live)/\(size) facts")
                }
                let seconds = Date().timeIntervalSince(start)
                ingest.append(["facts": size, "seconds": seconds, "facts_per_second": Double(size) / max(seconds, 1e-9)])
            }
            for method in ["none", "incontext", "recipe"] {
                var lat: [Double] = []
                for k in 0..<(repeats + 2) {
                    let q = probes[k % probes.count].0
                    let t = Date()
                    let r = try c.request(["op": "ask", "question": q, "method": method, "max_tokens": maxTokens])
                    guard r["ok"] as? Bool == true else { throw UsageError("ask failed: \(r)") }
                    if k >= 2 { lat.append(Date().timeIntervalSince(t) * 1000) }
                }
                lat.sort()
                rows.append(Row(facts: size, method: method, p50: lat[lat.count / 2], p99: lat[min(lat.count - 1, Int(Double(lat.count) * 0.99))],
                                mean: lat.reduce(0, +) / Double(lat.count)))
                say(String(format: "bench serve: %d facts, %@: p50 %.1f ms", size, method, rows.last!.p50))
            }
        }
        c.close()
        if json {
            Console.json(["max_tokens": maxTokens, "repeats": repeats, "ingest": ingest,
                          "rows": rows.map { ["facts": $0.facts, "method": $0.method, "p50_ms": $0.p50, "p99_ms": $0.p99, "mean_ms": $0.mean] }])
        } else {
            print("| facts | method | ask p50 ms | ask p99 ms | vs none (p50) |")
            print("|---:|---|---:|---:|---:|")
            for r in rows {
                let none = rows.first { $0.facts == r.facts && $0.method == "none" }!.p50
                print(String(format: "| %d | %@ | %.1f | %.1f | %+.1f%% |", r.facts, r.method, r.p50, r.p99, (r.p50 / none - 1) * 100))
            }
            for i in ingest {
                print(String(format: "\ningest: %d facts over the socket in %.1f s (%.0f facts/s)", i["facts"] as! Int,
                             i["seconds"] as! Double, i["facts_per_second"] as! Double))
            }
            print("(max_tokens \(maxTokens), \(repeats) asks per row after 2 warm-up asks; client-side latency through the socket)")
        }
        return .ok
    }
}
