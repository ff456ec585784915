// `recipe bench engine`: speed of the Llama engine and the MiniLM encoder on this
// machine, after checking that it still computes the right thing.
import Foundation
import Kernels
import Models

enum BenchCommand: Subcommand {
    static let name = "bench"
    static let summary = "measure engine speed (prefill, decode, sgemm, bandwidth), ingestion, retrieval"
    static let help = """
        usage: recipe bench engine [--threads 1,2] [--repeats N] [--decode-batch 1,8,32] [--json] [--models DIR] [--model FILE.gguf]
               recipe bench ingest ...      (see below)
               recipe bench retrieval ...   (see below)
               recipe bench serve ...       (see below)

        Loads the LLM, checks its logits and greedy tokens against the reference (exit 1 on a
        mismatch), then for each thread count reports median/p95 over N repeats (after a
        warm-up): prefill tokens/s at 16, 64 and 512 tokens and their GFLOP/s against the
        sgemm peak measured in the same run, decode tokens/s over 32 tokens and the bytes it
        streams against the measured memory bandwidth (a streaming read of 512 MiB with the
        same thread count), the bandwidth-bound ceiling of decode (bandwidth ÷ bytes read per
        token, weights by tensor type plus the K/V rows), MiniLM sentences/s (after checking
        batched against one-by-one features), model load time and peak RSS.

        options:
          --threads LIST   comma-separated thread counts (default 1,2)
          --repeats N      timed runs per measurement (default 5)
          --lengths LIST   prefill lengths (default 16,64,512)
          --decode-batch LIST  also decode this many sequences at once (one pass over the weights per
                           step, as the worker batches concurrent asks): tokens/s of all of them together
          --json           one JSON object on stdout
          --models DIR     models directory (default $RECIPE_MODELS or ~/.cache/recipe/models)
          --model FILE     a GGUF file instead of the default SmolLM2 (skips the reference check)
          --encoder-batch N  MiniLM statements per timed batch (default 64)
          --no-encoder     do not time the encoder

        """ + BenchIngest.help + "\n" + BenchRetrieval.help + "\n" + ServeBench.help
    static let valued: Set<String> = Set(["threads", "repeats", "lengths", "models", "model", "encoder-batch", "decode-batch"]).union(ServeBench.valued)
        .union(BenchIngest.valued).union(BenchRetrieval.valued).union(IngestEncoder.valued)

    struct Report: Codable {
        var model: String
        var loadSeconds: Double
        var check: BenchEngine.Check?
        var engine: [BenchEngine.ThreadResult]
        var decodeBytesPerToken: Int
        /// decodeBytesPerToken by the file's tensor type
        var decodeTraffic: [Traffic]
        var peakRSSBytes: Int
        /// the encoder directory timed, nil when it is not there (or --no-encoder)
        var encoder: String?
        var encoderBatch: Int
        /// /proc/loadavg (1, 5, 15 minutes) before and after the timings: figures taken with a
        /// load above the thread count are depressed
        var loadBefore: [Double]?
        var loadAfter: [Double]?
    }

    struct Traffic: Codable {
        let type: String
        let tensors: Int
        let weights: Int
        let bytes: Int
    }

    static func run(_ args: inout Arguments) throws -> ExitCode {
        if args.positional.first == "serve" { return try ServeBench.run(&args) }  // ServeBench.swift
        let json = args.flag("json")
        switch args.positional.first {
        case "ingest" where args.positional.count == 1: return try BenchIngest.run(&args, json: json)
        case "retrieval" where args.positional.count == 1: return try BenchRetrieval.run(&args, json: json)
        default: break
        }
        let threads = try list(args.string("threads") ?? "1,2", "threads")
        let lengths = try list(args.string("lengths") ?? "16,64,512", "lengths")
        let decodeBatches = try args.string("decode-batch").map { try list($0, "decode-batch") } ?? []
        let repeats = try args.int("repeats", default: 5)
        let modelsDir = args.string("models")
        let explicitModel = args.string("model")
        let encoderBatch = try args.int("encoder-batch", default: 64)
        let skipEncoder = args.flag("no-encoder")
        try args.rejectUnknown()
        guard args.positional.first == "engine", args.positional.count == 1 else {
            throw UsageError("expected `recipe bench engine`, `recipe bench ingest` or `recipe bench retrieval`")
        }
        guard repeats > 0 else { throw UsageError("--repeats must be positive") }
        guard encoderBatch > 0 else { throw UsageError("--encoder-batch must be positive") }
        let path = try explicitModel ?? ModelPaths.require(ModelPaths(directory: modelsDir).llm).path

        func log(_ s: String) { if !json { print(s) } }
        let loadBefore = loadAverage()
        let t0 = now()
        let model = try Llama(path: path)
        let load = now() - t0
        log("model \(path)\n  load \(String(format: "%.0f", load * 1000)) ms")

        let traffic = model.weights.decodeTraffic.map { Traffic(type: $0.type, tensors: $0.tensors, weights: $0.weights, bytes: $0.bytes) }
        var report = Report(model: path, loadSeconds: load, check: nil, engine: [],
                            decodeBytesPerToken: model.weights.decodeBytesPerToken, decodeTraffic: traffic,
                            peakRSSBytes: 0, encoder: nil, encoderBatch: encoderBatch, loadBefore: loadBefore, loadAfter: nil)
        if let l = loadBefore { log("  load average \(l.map(f2).joined(separator: " ")) on \(ProcessInfo.processInfo.activeProcessorCount) CPUs") }
        log("  decode reads \(f1(Double(report.decodeBytesPerToken) / 1e6)) MB of weights per token: "
            + traffic.map { "\($0.type) \(f1(Double($0.bytes) / 1e6)) MB (\($0.tensors) tensors, \(f2(Double($0.bytes) / Double(max(1, $0.weights)))) B/weight)" }
                .joined(separator: ", "))
        if explicitModel == nil {
            let c = try BenchEngine.check(model)
            report.check = c
            log("  check: max |Δ logit| = \(String(format: "%.2e", c.maxAbsLogitDiff)), greedy \(c.greedyMatches ? "matches" : "DIFFERS")")
            guard c.passed else {
                Console.err("recipe bench: the engine does not match the reference; not timing it\n")
                if json { try printJSON(report) }
                return .failure
            }
        }
        // the encoder is optional here (a --model run may have no MiniLM next to it)
        let encoderDir = ModelPaths(directory: modelsDir).encoder
        let encoder = skipEncoder || !FileManager.default.fileExists(atPath: encoderDir.path) ? nil : try BertEncoder(directory: encoderDir)
        report.encoder = encoder == nil ? nil : encoderDir.path
        if encoder == nil && !skipEncoder { log("  encoder: \(encoderDir.path) not found, not timed") }
        for n in threads {
            var r = try BenchEngine.run(model: model, threads: n, repeats: repeats, lengths: lengths, decodeTokens: 32,
                                        decodeBatches: decodeBatches)
            log("threads \(n)  (sgemm peak \(f1(r.sgemmPeakGFLOPS)) GFLOP/s, memory read \(f1(r.memoryBandwidthGBps)) GB/s, \(f1(r.memoryBandwidthPerCPUGBps)) GB per CPU-s)")
            for T in lengths {
                let s = r.prefillTokensPerSecond["\(T)"]!
                let g = r.prefillGFLOPS["\(T)"]!
                log("  prefill \(T): \(f1(s.median)) tok/s (p95 \(f1(s.p95))), \(f1(g)) GFLOP/s = \(f1(100 * g / r.sgemmPeakGFLOPS))% of sgemm peak"
                    + " [\(f1(r.prefillTokensPerCPUSecond["\(T)"]!)) tok per CPU-s]")
            }
            log("  decode 32: \(f1(r.decodeTokensPerSecond.median)) tok/s (p95 \(f1(r.decodeTokensPerSecond.p95))), "
                + "\(f1(Double(report.decodeBytesPerToken) / 1e6)) MB/token → \(f1(r.decodeGBps)) GB/s = "
                + "\(f1(100 * r.decodeGBps / r.memoryBandwidthGBps))% of measured bandwidth"
                + " [\(f1(r.decodeTokensPerCPUSecond)) tok per CPU-s]")
            log("  decode bound: \(f1(r.memoryBandwidthGBps)) GB/s ÷ \(f1(Double(report.decodeBytesPerToken) / 1e6)) MB/token (+ K/V) = "
                + "\(f1(r.decodeBoundTokensPerSecond)) tok/s; measured \(f1(r.decodeTokensPerSecond.median)) = "
                + "\(f1(100 * r.decodeTokensPerSecond.median / r.decodeBoundTokensPerSecond))% of the bound")
            for B in decodeBatches {
                let d = r.decodeBatchTokensPerSecond["\(B)"]!
                log("  decode 32 × \(B) sequences: \(f1(d.median)) tok/s (p95 \(f1(d.p95))), "
                    + "\(f1(d.median / r.decodeTokensPerSecond.median))× one sequence")
            }
            if let encoder {
                let e = BertBenchmark.run(encoder, batchSize: encoderBatch, threads: n, runs: max(3, repeats))
                guard e.maxDifference < 1e-4 else {
                    Console.err("recipe bench: batched encoder features differ from one-by-one by \(e.maxDifference); not timing it\n")
                    return .failure
                }
                r.encoderSentencesPerSecond = BenchStat(e.times.map { Double(encoderBatch) / $0 })
                log("  encoder (MiniLM, batch \(encoderBatch), \(f1(e.tokensPerSentence)) tok/sentence): "
                    + "\(f1(r.encoderSentencesPerSecond!.median)) sentences/s (p95 \(f1(r.encoderSentencesPerSecond!.p95)))")
            }
            report.engine.append(r)
        }
        report.peakRSSBytes = peakRSSBytes()
        report.loadAfter = loadAverage()
        if let l = report.loadAfter { log("load average after \(l.map(f2).joined(separator: " "))") }
        log("peak RSS \(report.peakRSSBytes >> 20) MiB")
        if json { try printJSON(report) }
        return .ok
    }

    static func f1(_ x: Double) -> String { String(format: "%.1f", x) }
    static func f2(_ x: Double) -> String { String(format: "%.2f", x) }

    /// The 1/5/15-minute load averages (Linux /proc/loadavg), nil elsewhere or when unreadable.
    static func loadAverage() -> [Double]? {
        guard let s = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return nil }
        let v = s.split(separator: " ").prefix(3).compactMap { Double($0) }
        return v.count == 3 ? v : nil
    }

    static func list(_ s: String, _ name: String) throws -> [Int] {
        let v = s.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !v.isEmpty, v.allSatisfy({ ($0 ?? 0) > 0 }) else { throw UsageError("--\(name) expects positive integers like 1,2, got '\(s)'") }
        return v.map { $0! }
    }

    static func printJSON(_ r: Report) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        print(String(decoding: try e.encode(r), as: UTF8.self))
    }
}
