// The measurements behind `recipe bench engine`: a correctness check against the golden
// reference, then timed prefill, decode, sgemm peak and memory bandwidth, each reported as
// median and p95 over repeats after a warm-up.
import Foundation
import Kernels
import Models
import COpenBLAS
import Parallelism

/// Median and 95th percentile of a set of timings (seconds) or rates.
struct BenchStat: Codable {
    let median: Double
    let p95: Double
    init(_ xs: [Double]) {
        let s = xs.sorted()
        median = s.isEmpty ? 0 : (s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2)
        p95 = s.isEmpty ? 0 : s[min(s.count - 1, Int((Double(s.count) * 0.95).rounded(.up)) - 1)]
    }
}

func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

/// CPU seconds (user + system) this process has used, all threads.
func cpuSeconds() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6
}

/// CPU seconds of the last `timeRuns`, per run (on a busy machine, CPU time per run at one
/// thread is what the run would take alone).
nonisolated(unsafe) var lastCPUSeconds: [Double] = []

/// Times `body` `repeats` times after one warm-up call; returns the seconds of each run.
func timeRuns(repeats: Int, _ body: () throws -> Void) rethrows -> [Double] {
    try body()
    var out: [Double] = []
    lastCPUSeconds = []
    for _ in 0..<repeats {
        let c0 = cpuSeconds()
        let t0 = now()
        try body()
        out.append(now() - t0)
        lastCPUSeconds.append(cpuSeconds() - c0)
    }
    return out
}

/// Peak resident set size of this process in bytes (getrusage; Linux reports KiB).
func peakRSSBytes() -> Int {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Int(u.ru_maxrss) * 1024
}

enum BenchEngine {
    /// "The capital of France is" and the reference's top-5 last-position logits for it
    /// (goldens/smollm2.json, prompt `plain`, fp64 numpy forward).
    static let checkTokens = [504, 3575, 282, 4649, 314]
    static let checkTop: [(Int, Float)] = [(7042, 17.37126), (260, 14.88859), (4528, 13.24497), (2250, 13.00947), (1315, 12.95151)]
    static let checkGreedy = [7042, 30, 198, 198, 504, 2988, 314, 42]

    struct Check: Codable {
        let maxAbsLogitDiff: Double
        let greedyMatches: Bool
        let passed: Bool
    }

    /// Prefill logits against the reference (≤ 2e-3) and 8 greedy tokens through the decode path.
    static func check(_ model: Llama) throws -> Check {
        let out = try model.forward(LlamaSequence(tokens: checkTokens), logits: .last)
        let last = Array(out.last)
        let d = checkTop.map { Double(abs(last[$0.0] - $0.1)) }.max() ?? .infinity
        let g = try model.generate(LlamaSequence(tokens: checkTokens), maxTokens: checkGreedy.count)
        return Check(maxAbsLogitDiff: d, greedyMatches: g == checkGreedy, passed: d < 2e-3 && g == checkGreedy)
    }

    struct ThreadResult: Codable {
        let threads: Int
        /// tokens/s keyed by prompt length ("16", "64", "512")
        var prefillTokensPerSecond: [String: BenchStat] = [:]
        /// GFLOP/s of the prefill at each length (median)
        var prefillGFLOPS: [String: Double] = [:]
        /// tokens per CPU-second (all threads): on a machine shared with other work this is
        /// what one thread would reach alone
        var prefillTokensPerCPUSecond: [String: Double] = [:]
        var decodeTokensPerCPUSecond = 0.0
        var decodeTokensPerSecond = BenchStat([])
        /// tokens/s of B sequences decoded together (`--decode-batch`), keyed by B
        var decodeBatchTokensPerSecond: [String: BenchStat] = [:]
        var sgemmPeakGFLOPS = 0.0
        /// streaming read of a 512 MiB buffer with this many threads (best of the repeats)
        var memoryBandwidthGBps = 0.0
        /// the same read in GB per CPU-second of this process (all threads): on a machine
        /// shared with other work, what the threads stream while they run
        var memoryBandwidthPerCPUGBps = 0.0
        /// decode weight bytes per token × decode tokens/s, against the measured bandwidth
        var decodeGBps = 0.0
        /// the bandwidth-bound ceiling of decode: measured bandwidth / bytes read per token
        /// (weights + the K/V rows at the mean position of the timed steps)
        var decodeBoundTokensPerSecond = 0.0
        /// MiniLM sentence features (batch of `encoderBatch` short statements), if the encoder is present
        var encoderSentencesPerSecond: BenchStat?
    }

    /// Bytes one decode step reads from the KV cache at position `pos` (K and V rows of every
    /// earlier position, every block, fp32).
    static func kvBytes(_ c: LlamaConfig, position pos: Int) -> Int { c.blockCount * 2 * c.kvWidth * 4 * pos }

    /// Synthetic but valid token ids (a walk through the vocabulary).
    static func tokens(_ n: Int, vocab: Int) -> [Int] { (0..<n).map { (1000 + $0 * 7919) % vocab } }

    /// FLOPs of a prefill of T tokens with logits for the last row only.
    static func prefillFLOPs(_ c: LlamaConfig, T: Int) -> Double {
        let C = Double(c.embeddingLength), FF = Double(c.feedForwardLength), L = Double(c.blockCount)
        let linear = C * Double(c.qkvWidth) + C * C + 3 * C * FF
        let attention = Double(c.headCount) * Double(c.headSize) * Double(T) * Double(T + 1)  // QKᵀ and PV MACs, causal
        return L * (2 * linear * Double(T) + 2 * attention) + 2 * Double(c.vocabSize) * C
    }

    static func run(model: Llama, threads: Int, repeats: Int, lengths: [Int], decodeTokens: Int, decodeBatches: [Int] = []) throws -> ThreadResult {
        Threads.set(threads)
        var r = ThreadResult(threads: threads)
        let V = model.config.vocabSize
        for T in lengths {
            let seq = LlamaSequence(tokens: tokens(T, vocab: V))
            let times = try timeRuns(repeats: repeats) { _ = try model.forward(seq, logits: .last) }
            r.prefillTokensPerSecond["\(T)"] = BenchStat(times.map { Double(T) / $0 })
            r.prefillGFLOPS["\(T)"] = prefillFLOPs(model.config, T: T) / BenchStat(times).median / 1e9
            r.prefillTokensPerCPUSecond["\(T)"] = Double(T) / BenchStat(lastCPUSeconds).median
        }
        // decode: prefill 16 tokens, then time `decodeTokens` single-token steps
        let prompt = LlamaSequence(tokens: tokens(16, vocab: V))
        var decodeRates: [Double] = [], decodeCPU: [Double] = []
        for rep in 0...repeats {  // run 0 is the warm-up
            let cache = model.makeCache(capacity: 16 + decodeTokens)
            _ = try model.forward(prompt, cache: cache, logits: .none)
            var tok = 504
            let c0 = cpuSeconds()
            let t0 = now()
            for _ in 0..<decodeTokens { tok = argmax(try model.decode(token: tok, cache: cache)) }
            if rep > 0 {
                decodeRates.append(Double(decodeTokens) / (now() - t0))
                decodeCPU.append(Double(decodeTokens) / (cpuSeconds() - c0))
            }
        }
        r.decodeTokensPerSecond = BenchStat(decodeRates)
        // batched decode: B sequences of 16 prefilled tokens, `decodeTokens` steps of all of them
        for B in decodeBatches where B > 0 {
            var rates: [Double] = []
            for rep in 0...repeats {
                let caches = (0..<B).map { _ in model.makeCache(capacity: 16 + decodeTokens) }
                _ = try model.forward(batch: (0..<B).map { _ in prompt }, caches: caches, logits: .none)
                var toks = (0..<B).map { 504 + $0 }
                let t0 = now()
                for _ in 0..<decodeTokens { toks = try model.decode(tokens: toks, caches: caches).map { argmax($0) } }
                if rep > 0 { rates.append(Double(B * decodeTokens) / (now() - t0)) }
            }
            r.decodeBatchTokensPerSecond["\(B)"] = BenchStat(rates)
        }
        r.decodeTokensPerCPUSecond = BenchStat(decodeCPU).median
        r.sgemmPeakGFLOPS = sgemmPeak(repeats: repeats)
        (r.memoryBandwidthGBps, r.memoryBandwidthPerCPUGBps) = memoryBandwidth(repeats: repeats)
        r.decodeGBps = Double(model.weights.decodeBytesPerToken) * r.decodeTokensPerSecond.median / 1e9
        let perToken = model.weights.decodeBytesPerToken + kvBytes(model.config, position: 16 + decodeTokens / 2)
        r.decodeBoundTokensPerSecond = r.memoryBandwidthGBps * 1e9 / Double(perToken)
        return r
    }

    /// Best GFLOP/s of a 1024³ fp32 sgemm (the ceiling the prefill is compared with).
    static func sgemmPeak(repeats: Int) -> Double {
        let n = 1024
        let a = FloatBuffer(count: n * n), b = FloatBuffer(count: n * n), c = FloatBuffer(count: n * n)
        for i in 0..<(n * n) { a.p[i] = Float(i % 7) * 0.1; b.p[i] = Float(i % 5) * 0.1 }
        BLASThreads.sync()
        let times = timeRuns(repeats: max(3, repeats)) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(n), Int32(n), 1, a.p, Int32(n), b.p, Int32(n), 0, c.p, Int32(n))
        }
        return 2 * Double(n * n * n) / times.min()! / 1e9
    }

    /// Read bandwidth: a 512 MiB array (16× the L3) summed with SIMD loads, split across
    /// threads; best of the runs in GB per wall-clock second and in GB per CPU-second.
    static func memoryBandwidth(repeats: Int) -> (perSecond: Double, perCPUSecond: Double) {
        let n = 128 << 20
        let buf = FloatBuffer(count: n)
        for i in stride(from: 0, to: n, by: 1024) { buf.p[i] = 1 }
        let p = UnsafeSendable(buf.p)
        let partial = FloatBuffer(count: 64)
        let out = UnsafeSendable(partial.p)
        let times = timeRuns(repeats: max(3, repeats)) {
            let parts = Threads.count
            parallelFor(parts) { t in
                let lo = n / parts * t, hi = t == parts - 1 ? n : n / parts * (t + 1)
                var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
                var i = lo
                while i + 64 <= hi {
                    let q = UnsafeRawPointer(p.value + i)
                    a0 += q.load(as: SIMD16<Float>.self); a1 += q.load(fromByteOffset: 64, as: SIMD16<Float>.self)
                    a2 += q.load(fromByteOffset: 128, as: SIMD16<Float>.self); a3 += q.load(fromByteOffset: 192, as: SIMD16<Float>.self)
                    i += 64
                }
                out.value[t] = (a0 + a1 + a2 + a3).sum()
            }
        }
        return (Double(n * 4) / times.min()! / 1e9, Double(n * 4) / lastCPUSeconds.min()! / 1e9)
    }
}
