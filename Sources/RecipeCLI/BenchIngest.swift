// `recipe bench ingest`: facts per second from an inbox file to durable rows, against the
// encoder's raw batched throughput (BertEncoder.featureMatrix + RecipeModel.encodeKnowledge
// on the same statements, same batch size) measured in the same run; then recovery time and
// disk bytes per fact at 10^5 facts with the hashing encoder at RECIPE's dimensions (R 256,
// P 3 x C 576), which isolates storage cost from model cost.
// Check first: the keys and prompts the repository stored equal a direct encode.
import Foundation
import Glibc
import Models
import Posix
import Recipe
import Storage
import Worker

enum BenchIngest {
    static let valued: Set<String> = Set(["facts", "step", "repeats", "recovery-facts", "dir"]).union(BenchSources.valued)
    static let help = """
        usage: recipe bench ingest [--facts N] [--step N] [--repeats N] [--recovery-facts N] [--dir DIR]
                                   [--source pipe,jetstream [--servers URL] [--lines FILE]]
                                   [--models DIR] [--checkpoint FILE] [--json]
          --facts N            facts per end-to-end run (default 1024)
          --step N             facts per time step and per raw encoder batch (default 256)
          --repeats N          timed runs of each (default 3, after a warm-up)
          --recovery-facts N   facts for the recovery / disk part (default 100000; 0 skips it)
          --dir DIR            scratch directory (default $TMPDIR)
        \(BenchSources.help)
        """

    struct Report: Codable {
        var encoder: String
        var facts: Int
        var step: Int
        var rawFactsPerSecond: [Double]
        var endToEndFactsPerSecond: [Double]
        var ratioOfMedians: Double
        var checkMaxAbsDiff: Double
        var recovery: String?
        var recoveryFacts: Int
        var reopenSeconds: Double?
        var rebuildSecondsHashing: Double?
        var rebuildSecondsEstimatedRealEncoder: Double?
        var bytesPerFact: Double?
        var loadAverage: String
    }

    static func run(_ args: inout Arguments, json: Bool) throws -> ExitCode {
        let N = try args.int("facts", default: 1024)
        let step = try args.int("step", default: 256)
        let repeats = try args.int("repeats", default: 3)
        let recoveryFacts = try args.int("recovery-facts", default: 100_000)
        let scratch = args.string("dir") ?? NSTemporaryDirectory()
        let sources = args.string("source").map { $0.split(separator: ",").map { String($0) } }
        let servers = args.string("servers"), linesFile = args.string("lines")
        let loaded = try IngestEncoder.load(&args)
        try args.rejectUnknown()
        guard N >= 1, step >= 1, repeats >= 1, recoveryFacts >= 0 else { throw UsageError("--facts, --step, --repeats must be positive") }
        if let sources {  // BenchSources.swift
            return try BenchSources.run(sources: sources, servers: servers, linesFile: linesFile, facts: N, repeats: repeats,
                                        scratch: scratch, loaded: loaded, json: json)
        }
        func say(_ s: String) { if !json { print(s) } }
        let encoder = loaded.encoder
        let statements = (0..<N).map { "The capital of the benchmark country number \($0) is the city called Bench\($0 * 7919 % 100_003)" }
        say("ingest: \(loaded.description); \(N) facts in steps of \(step); load \(loadAverage())")

        // Raw batched encoder throughput (what the repository calls per step).
        func rawEncode(_ batch: [String]) throws -> (keys: [Float], prompts: [Float]) { try encoder.encode(batch) }
        _ = try rawEncode(Array(statements.prefix(step)))  // warm-up
        var raw: [Double] = []
        var reference: (keys: [Float], prompts: [Float]) = ([], [])
        for rep in 0..<repeats {
            let t0 = BenchRetrieval.now()
            var k: [Float] = [], p: [Float] = []
            for s in stride(from: 0, to: N, by: step) {
                let r = try rawEncode(Array(statements[s..<min(N, s + step)]))
                if rep == 0 { k += r.keys; p += r.prompts }
            }
            raw.append(Double(N) / (BenchRetrieval.now() - t0))
            if rep == 0 { reference = (k, p) }
        }

        // End to end: one inbox file renamed in -> moved to .done (its facts durable).
        var e2e: [Double] = []
        var maxDiff: Float = 0
        let lines = statements.map { "{\"statement\": \"\($0)\"}\n" }.joined()
        for rep in 0...repeats {  // rep 0 is the warm-up
            let root = scratch + "/recipe-bench-ingest-\(getpid())-\(rep)"
            defer { IngestVerify.removeTree(root) }
            try FileSystem.makeDirectory(root)
            let repo = try Repository(path: root + "/repo", encoder: encoder)
            let inbox = try InboxWatcher(directory: root + "/inbox")
            let committer = TimeStepCommitter(sources: FactSources(inboxes: [inbox]), repository: repo,
                                              policy: TimeStepPolicy(maximumOperations: step, collectMilliseconds: 0))
            try FileSystem.atomicReplace(root + "/facts.jsonl", with: Array(lines.utf8))
            let t0 = BenchRetrieval.now()
            try FileSystem.rename(root + "/facts.jsonl", to: root + "/inbox/facts.jsonl")
            var done = false
            while !done {
                if let r = try committer.step(timeoutMilliseconds: 1000) { done = r.files.contains { $0.name == "facts.jsonl" } }
            }
            let seconds = BenchRetrieval.now() - t0
            if rep > 0 { e2e.append(Double(N) / seconds) }
            if rep == 0 {
                // Check: rows stored equal the direct encode (same batches, same order).
                let snap = repo.snapshot()
                let R = encoder.keyDimension, PC = encoder.promptRowFloats
                guard snap.liveCount == N else {
                    IngestOutput.note("recipe bench ingest: \(snap.liveCount) facts stored, expected \(N)")
                    return .failure
                }
                for row in 1...N {
                    let key = snap.key(row: row), prompt = snap.prompt(row: row)
                    for i in 0..<R { maxDiff = max(maxDiff, abs(key[i] - reference.keys[(row - 1) * R + i])) }
                    for i in 0..<PC { maxDiff = max(maxDiff, abs(prompt[i] - reference.prompts[(row - 1) * PC + i])) }
                }
                say(String(format: "  check: stored rows vs direct encode, max |diff| %.3g", maxDiff))
                guard maxDiff <= 1e-4 else {
                    IngestOutput.note("recipe bench ingest: stored rows differ from a direct encode by \(maxDiff); not timing")
                    return .failure
                }
            }
            try repo.close()
        }
        let rawMedian = BenchRetrieval.percentile(raw, 0.5), e2eMedian = BenchRetrieval.percentile(e2e, 0.5)
        say(String(format: "  raw encoder (featureMatrix + encodeKnowledge): median %.1f facts/s (min %.1f, max %.1f)",
                   rawMedian, raw.min()!, raw.max()!))
        say(String(format: "  end to end (inbox file -> durable, moved to .done): median %.1f facts/s (min %.1f, max %.1f)",
                   e2eMedian, e2e.min()!, e2e.max()!))
        say(String(format: "  ratio %.2f (goal ≥ 0.8)", e2eMedian / rawMedian))
        var report = Report(encoder: loaded.description, facts: N, step: step, rawFactsPerSecond: raw, endToEndFactsPerSecond: e2e,
                            ratioOfMedians: e2eMedian / rawMedian, checkMaxAbsDiff: Double(maxDiff), recovery: nil,
                            recoveryFacts: recoveryFacts, loadAverage: loadAverage())

        if recoveryFacts > 0 {
            let hashing = HashingFactEncoder(keyDimension: 256, promptRows: 3, promptWidth: 576, fingerprint: "bench-recovery")
            say("recovery: \(recoveryFacts) facts, hashing encoder at R 256, P 3 x C 576, steps of 1000 ...")
            let r = try RepositoryBenchmark.run(directory: scratch, encoder: hashing, facts: recoveryFacts, perStep: 1000)
            report.recovery = r.description
            report.reopenSeconds = r.reopenSeconds
            report.rebuildSecondsHashing = r.rebuildSeconds
            report.rebuildSecondsEstimatedRealEncoder = loaded.recipe == nil ? nil : r.rebuildSeconds + Double(recoveryFacts) / rawMedian
            report.bytesPerFact = Double(r.bytesOnDisk) / Double(recoveryFacts)
            say("  \(r)")
            say(String(format: "  clean reopen %.2f s; rebuild without manifest %.2f s (+ %.0f s of real encoding at the raw rate); %.0f bytes per fact on disk",
                       r.reopenSeconds, r.rebuildSeconds, Double(recoveryFacts) / rawMedian, report.bytesPerFact!))
        }
        if json {
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys]
            print(String(decoding: try e.encode(report), as: UTF8.self))
        }
        return .ok
    }

    /// /proc/loadavg's first three fields (how busy the machine was).
    static func loadAverage() -> String {
        guard let s = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return "unknown" }
        return s.split(separator: " ").prefix(3).joined(separator: " ")
    }
}
