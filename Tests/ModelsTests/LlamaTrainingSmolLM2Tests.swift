// The training pass on the real SmolLM2-135M: logits at the loss rows equal the inference
// forward's, d loss / d prefix agrees with finite differences on a handful of coordinates,
// and the time of a realistic RECIPE training batch (printed, never asserted).
import Foundation
import Parallelism
import Testing
import Kernels
import Models
import TestSupport

@Suite(.serialized) struct LlamaTrainingSmolLM2Tests {
    /// A continuous prompt near the token embeddings: the embeddings of `tokens`, jittered.
    static func prefix(_ model: Llama, _ tokens: [Int], seed: UInt64) throws -> [Float] {
        let rows = try model.embeddingRows(of: tokens)
        let noise = TinyLlama.random(rows.count, seed: seed, scale: 0.02)
        return zip(rows, noise).map { $0 + $1 }
    }

    /// `count` sequences of 3 prefix rows + `tokens` tokens cut from the long golden prompt,
    /// with loss rows at the last 3 positions.
    static func trainingBatch(_ model: Llama, count: Int, tokens: Int) throws -> ([LlamaSequence], [[Int]]) {
        let long = try LlamaFixture.goldens.get().prompts.first { $0.name == "long_story" }!.token_ids
        var seqs: [LlamaSequence] = [], rows: [[Int]] = []
        for s in 0..<count {
            let start = (s * 3) % (long.count - tokens)
            let t = Array(long[start..<start + tokens])
            seqs.append(LlamaSequence(tokens: t, prefix: try prefix(model, [long[s % long.count], 28, 253], seed: UInt64(s))))
            let n = 3 + tokens
            rows.append([n - 3, n - 2, n - 1])
        }
        return (seqs, rows)
    }

    @Test func logitsMatchInferenceForward() throws {
        let model = try LlamaFixture.model.get()
        var (seqs, rows) = try Self.trainingBatch(model, count: 3, tokens: 12)
        seqs[1].prefix = []  // prefix lengths 3, 0, 3
        rows[1] = [0, 6, 11]
        let pass = LlamaTrainingPass(model: model)
        let out = try pass.forward(batch: seqs, lossRows: rows)
        var worst: Float = 0
        for (s, seq) in seqs.enumerated() {
            let ref = try model.forward(seq, logits: .rows(rows[s]))
            worst = max(worst, maxAbsDiff(out[s].logits, ref.logits))
        }
        print("LlamaTrainingSmolLM2Tests: max |training − inference logits| at the loss rows = \(worst)")
        #expect(worst < 1e-3, "max |training − inference logits| = \(worst)")
    }

    /// Label loss −Σ log p(target) at 3 rows; central differences on the 4 prefix coordinates
    /// with the largest gradient and 4 others.
    @Test func prefixGradientMatchesFiniteDifferences() throws {
        let model = try LlamaFixture.model.get()
        let V = model.config.vocabSize
        let (seqs, rows) = try Self.trainingBatch(model, count: 2, tokens: 10)
        let targets = [[1669, 253, 28], [314, 2, 655]]
        func weights(_ s: Int) -> [Float] {
            var w = [Float](repeating: 0, count: 3 * V)
            for (i, t) in targets[s].enumerated() { w[i * V + t] = -1 }
            return w
        }
        let losses = (0..<2).map { WeightedLogSoftmaxLoss(V: V, w: weights($0)) }
        let pass = LlamaTrainingPass(model: model)
        let out = try pass.forward(batch: seqs, lossRows: rows)
        let dPrefix = try pass.backward(dLogits: (0..<2).map { losses[$0].gradient(out[$0].logits) })

        let s = 0, seq = seqs[s], g = dPrefix[s]
        var coords = Array(g.indices.sorted { abs(g[$0]) > abs(g[$1]) }.prefix(4))
        coords += [7, 600, 1000, 1500]
        var worst = 0.0, report: [String] = []
        for i in coords {
            func loss(_ p: [Float]) throws -> Double {
                let o = try model.forward(LlamaSequence(tokens: seq.tokens, prefix: p), logits: .rows(rows[s]))
                return losses[s].value(o.logits)
            }
            func central(_ h: Float) throws -> Double {
                var pp = seq.prefix, pm = seq.prefix
                pp[i] += h; pm[i] -= h
                return (try loss(pp) - loss(pm)) / Double(pp[i] - pm[i])
            }
            // steps of 2e-2..4e-2 against prefix entries of rms ≈ 0.12: smaller steps drown in
            // the fp32 noise of 30 blocks; Richardson's (4·D(h/2) − D(h)) / 3 removes the h² term
            let d1 = try central(4e-2), d2 = try central(2e-2)
            let fd = (4 * d2 - d1) / 3
            let a = Double(g[i])
            let rel = abs(fd - a) / max(abs(fd), abs(a), 1e-2 * Double(abs(g[coords[0]])))
            worst = max(worst, rel)
            report.append(String(format: "[%d] analytic %.5f finite difference %.5f (plain h=2e-2: %.5f) rel %.2e", i, a, fd, d2, rel))
        }
        print("LlamaTrainingSmolLM2Tests finite differences:\n  " + report.joined(separator: "\n  "))
        print("LlamaTrainingSmolLM2Tests: max relative error vs finite differences = \(worst)")
        #expect(worst < 1e-2, "max relative error vs finite differences = \(worst)")
    }

    /// 24 sequences of 3 prefix rows + 15 tokens, loss at 3 rows each: median of 5 runs.
    @Test func trainingBatchTiming() throws {
        let model = try LlamaFixture.model.get()
        let V = model.config.vocabSize
        let (seqs, rows) = try Self.trainingBatch(model, count: 24, tokens: 15)
        let pass = LlamaTrainingPass(model: model)
        var runs: [LlamaTrainingTimings] = [], walls: [Double] = [], cpus: [Double] = []
        var dLogits: [[Float]] = []
        for r in 0..<6 {
            let t0 = ContinuousClock.now, c0 = processCPUSeconds()
            let out = try pass.forward(batch: seqs, lossRows: rows)
            if dLogits.isEmpty {
                dLogits = out.map { o in o.logits.enumerated().map { Float(($0.offset * 7919) % 13) * 1e-3 - 6e-3 } }
            }
            _ = try pass.backward(dLogits: dLogits)
            let d = ContinuousClock.now - t0, cpu = processCPUSeconds() - c0
            if r > 0 {
                runs.append(pass.timings); cpus.append(cpu)
                walls.append(Double(d.components.attoseconds) * 1e-18 + Double(d.components.seconds))
            }
        }
        func median(_ f: (LlamaTrainingTimings) -> Double) -> Double { runs.map(f).sorted()[runs.count / 2] }
        let rowsTotal = seqs.reduce(0) { $0 + $1.prefix.count / model.config.embeddingLength + $1.tokens.count }
        print(String(format: "LlamaTrainingSmolLM2Tests timing (%d threads, %d seqs, %d rows, %d loss rows, V=%d), median of %d: wall %.3f s = forward blocks %.3f + forward LM head %.3f + backward LM head %.3f + backward blocks %.3f",
                     Threads.count, seqs.count, rowsTotal, rows.count * 3, V, runs.count, walls.sorted()[walls.count / 2],
                     median(\.forwardBlocks), median(\.forwardHead), median(\.backwardHead), median(\.backwardBlocks)))
        print(String(format: "LlamaTrainingSmolLM2Tests: process CPU time per batch, median %.3f CPU-s (the wall time on %d otherwise idle cores is about this / %d); load average now %@",
                     cpus.sorted()[cpus.count / 2], Threads.count, Threads.count, loadAverage()))
        let t0 = ContinuousClock.now
        _ = try model.forward(batch: seqs, logits: .none)
        print("LlamaTrainingSmolLM2Tests: inference forward of the same batch (no logits): \(ContinuousClock.now - t0)")
    }
}

/// User + system CPU seconds of this process (all threads): with other work sharing the
/// cores, a fairer measure than the wall clock.
func processCPUSeconds() -> Double {
    var u = rusage()
    getrusage(Int32(RUSAGE_SELF.rawValue), &u)
    return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6
}

func loadAverage() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
}
