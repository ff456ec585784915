// The training pass on a tiny random Llama written to an F32 GGUF by the test: its logits
// equal the inference forward's, and d loss / d prefix equals central finite differences
// of the inference forward (an independent code path) for a batch of sequences with
// different prefix lengths.
import Foundation
import Testing
import Kernels
import Models
import TestSupport
import WeightFormats

/// A tiny random Llama (C = 64, 2 blocks, 4 query heads sharing 2 KV heads, V = 97, tied
/// LM head) written as an F32 GGUF file with `GGUFWriter`.
enum TinyLlama {
    static let C = 64, L = 2, NH = 4, NKV = 2, FF = 96, V = 97, context = 128

    static let model: Result<Llama, Error> = Result {
        let dir = try Fixtures.temporaryDirectory("tiny-llama")
        let path = dir.appendingPathComponent("tiny.gguf").path
        try write(to: path)
        return try Llama(path: path)
    }

    /// Deterministic floats in [−scale, scale] (SplitMix64).
    static func random(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] { SeededRandom.floats(n, seed: seed, scale: scale) }

    static func write(to path: String) throws {
        let HS = C / NH
        // GGUF shapes: ne[0] (the row length) first
        var tensors: [(String, [Int], [Float])] = []
        var seed: UInt64 = 1000
        func add(_ name: String, _ shape: [Int], scale: Float, offset: Float = 0) {
            seed += 1
            tensors.append((name, shape, random(shape.reduce(1, *), seed: seed, scale: scale).map { $0 + offset }))
        }
        add("token_embd.weight", [C, V], scale: 1)
        add("output_norm.weight", [C], scale: 0.2, offset: 1)
        for l in 0..<L {
            let p = "blk.\(l)."
            add(p + "attn_norm.weight", [C], scale: 0.2, offset: 1)
            add(p + "attn_q.weight", [C, NH * HS], scale: 0.3)
            add(p + "attn_k.weight", [C, NKV * HS], scale: 0.3)
            add(p + "attn_v.weight", [C, NKV * HS], scale: 0.2)
            add(p + "attn_output.weight", [NH * HS, C], scale: 0.2)
            add(p + "ffn_norm.weight", [C], scale: 0.2, offset: 1)
            add(p + "ffn_gate.weight", [C, FF], scale: 0.2)
            add(p + "ffn_up.weight", [C, FF], scale: 0.2)
            add(p + "ffn_down.weight", [FF, C], scale: 0.15)
        }
        var w = GGUFWriter()
        w.set("general.architecture", "llama")
        w.set("llama.context_length", context)
        w.set("llama.embedding_length", C)
        w.set("llama.block_count", L)
        w.set("llama.feed_forward_length", FF)
        w.set("llama.attention.head_count", NH)
        w.set("llama.attention.head_count_kv", NKV)
        w.set("llama.rope.freq_base", Float(10000))
        w.set("llama.attention.layer_norm_rms_epsilon", Float(1e-5))
        w.set("llama.vocab_size", V)
        for (name, shape, values) in tensors { try w.addTensor(name: name, shape: shape, type: .f32, values: values) }
        try w.write(to: path)
    }
}

/// loss = Σ_rows Σ_v w[row, v] · log_softmax(z_row)_v (in Double), and its gradient
/// d loss / d z = w − softmax(z) · Σ_v w.
struct WeightedLogSoftmaxLoss {
    let V: Int
    let w: [Float]

    func value(_ logits: [Float]) -> Double {
        var total = 0.0
        for r in 0..<(logits.count / V) {
            let z = logits[r * V..<(r + 1) * V].map(Double.init)
            let mx = z.max()!
            let lse = mx + Foundation.log(z.reduce(0) { $0 + Foundation.exp($1 - mx) })
            for v in 0..<V { total += Double(w[r * V + v]) * (z[v] - lse) }
        }
        return total
    }

    func gradient(_ logits: [Float]) -> [Float] {
        var g = [Float](repeating: 0, count: logits.count)
        for r in 0..<(logits.count / V) {
            let z = logits[r * V..<(r + 1) * V].map(Double.init)
            let mx = z.max()!
            let e = z.map { Foundation.exp($0 - mx) }
            let sum = e.reduce(0, +)
            let wsum = (0..<V).reduce(0.0) { $0 + Double(w[r * V + $1]) }
            for v in 0..<V { g[r * V + v] = Float(Double(w[r * V + v]) - e[v] / sum * wsum) }
        }
        return g
    }
}

@Suite struct LlamaTrainingTests {
    /// Three sequences with prefixes of 3, 0 and 2 rows; the loss rows include a prefix row and
    /// leave rows after them (which the pass cuts off).
    static func batch(_ model: Llama) throws -> ([LlamaSequence], [[Int]]) {
        let C = model.config.embeddingLength
        let seqs = [
            LlamaSequence(tokens: [5, 17, 3, 88, 41], prefix: TinyLlama.random(3 * C, seed: 7)),
            LlamaSequence(tokens: [9, 9, 60, 2, 71, 33, 12]),
            LlamaSequence(tokens: [44, 0, 96, 23], prefix: TinyLlama.random(2 * C, seed: 8, scale: 2)),
        ]
        return (seqs, [[4, 7], [2, 5], [1, 3, 4]])
    }

    @Test func logitsMatchInferenceForward() throws {
        let model = try TinyLlama.model.get()
        let (seqs, rows) = try Self.batch(model)
        let pass = LlamaTrainingPass(model: model)
        let out = try pass.forward(batch: seqs, lossRows: rows)
        var worst: Float = 0
        for (s, seq) in seqs.enumerated() {
            let ref = try model.forward(seq, logits: .rows(rows[s]))
            #expect(out[s].rows == rows[s])
            worst = max(worst, maxAbsDiff(out[s].logits, ref.logits))
        }
        // the batched inference forward too (same rows for all: the first loss row of each is valid)
        let batched = try model.forward(batch: seqs, logits: .rows([1]))
        let again = try pass.forward(batch: seqs, lossRows: [[1], [1], [1]])
        for s in seqs.indices { worst = max(worst, maxAbsDiff(batched[s].logits, again[s].logits)) }
        print("LlamaTrainingTests tiny: max |training − inference logits| = \(worst)")
        #expect(worst < 1e-4, "max |training − inference logits| = \(worst)")
    }

    @Test func prefixGradientMatchesFiniteDifferences() throws {
        let model = try TinyLlama.model.get()
        let V = model.config.vocabSize
        let (seqs, rows) = try Self.batch(model)
        // a few weighted tokens per row (like label losses): a dense w would sum the fp32 noise
        // of all V logits into the loss and drown the finite differences
        let losses = seqs.indices.map { s in
            var w = [Float](repeating: 0, count: rows[s].count * V)
            let r = TinyLlama.random(4 * rows[s].count, seed: 100 + UInt64(s))
            for i in r.indices { w[(i / 4) * V + Int((r[i] + 1) * 48) % V] += i % 4 == 0 ? -1 : 0.3 }
            return WeightedLogSoftmaxLoss(V: V, w: w)
        }
        let pass = LlamaTrainingPass(model: model)
        let out = try pass.forward(batch: seqs, lossRows: rows)
        let dPrefix = try pass.backward(dLogits: seqs.indices.map { losses[$0].gradient(out[$0].logits) })
        #expect(dPrefix.map(\.count) == seqs.map(\.prefix.count))

        var worst = 0.0, worstPlain = 0.0, checked = 0, worstAt = ""
        var diff2 = 0.0, norm2 = 0.0
        for (s, seq) in seqs.enumerated() where !seq.prefix.isEmpty {
            let scaleOfGrad = Double(dPrefix[s].map(abs).max()!)
            for i in seq.prefix.indices {
                // the inference forward is an independent code path
                func loss(_ p: [Float]) throws -> Double {
                    let o = try model.forward(LlamaSequence(tokens: seq.tokens, prefix: p), logits: .rows(rows[s]))
                    return losses[s].value(o.logits)
                }
                func central(_ h: Float) throws -> Double {
                    var pp = seq.prefix, pm = seq.prefix
                    pp[i] += h; pm[i] -= h
                    return (try loss(pp) - loss(pm)) / Double((pp[i] - pm[i]))
                }
                // Richardson: (4·D(h/2) − D(h)) / 3 cancels the h² term of the central difference
                let d1 = try central(4e-2), d2 = try central(2e-2)
                let fd = (4 * d2 - d1) / 3
                let a = Double(dPrefix[s][i])
                let floor = 1e-2 * scaleOfGrad
                let rel = abs(fd - a) / max(abs(fd), abs(a), floor)
                if rel > worst { worstAt = "sequence \(s) [\(i)]: analytic \(a), finite difference \(fd) (plain h=2e-2: \(d2))" }
                worst = max(worst, rel)
                diff2 += (fd - a) * (fd - a); norm2 += fd * fd
                worstPlain = max(worstPlain, abs(d2 - a) / max(abs(d2), abs(a), floor))
                checked += 1
            }
        }
        print("LlamaTrainingTests tiny: worst at \(worstAt); plain central difference (h = 2e-2) max relative error \(worstPlain)")
        print("LlamaTrainingTests tiny: \(checked) prefix coordinates, max relative error vs finite differences = \(worst), ‖analytic − fd‖ / ‖fd‖ = \((diff2 / norm2).squareRoot())")
        #expect(worst < 1e-2, "max relative error of d loss / d prefix vs finite differences = \(worst)")
    }

    /// Sequences do not see each other: each one's prefix gradient in the batch equals the
    /// gradient of a pass over it alone.
    @Test func batchedGradientsEqualSingleSequenceGradients() throws {
        let model = try TinyLlama.model.get()
        let V = model.config.vocabSize
        let (seqs, rows) = try Self.batch(model)
        let losses = seqs.indices.map { WeightedLogSoftmaxLoss(V: V, w: TinyLlama.random(rows[$0].count * V, seed: 200 + UInt64($0))) }
        let pass = LlamaTrainingPass(model: model)
        let out = try pass.forward(batch: seqs, lossRows: rows)
        let batched = try pass.backward(dLogits: seqs.indices.map { losses[$0].gradient(out[$0].logits) })
        let batchedInputs = try seqs.indices.map { try pass.inputGradient($0) }
        var worst: Float = 0
        for s in seqs.indices {
            let alone = LlamaTrainingPass(model: model)
            let o = try alone.forward(batch: [seqs[s]], lossRows: [rows[s]])
            let g = try alone.backward(dLogits: [losses[s].gradient(o[0].logits)])
            // sgemm blocks differently for other row counts: compare relative to the largest entry
            for (a, b) in [(o[0].logits, out[s].logits), (try alone.inputGradient(0), batchedInputs[s])] {
                worst = max(worst, maxAbsDiff(a, b) / max(1e-6, a.map(abs).max()!))
            }
            #expect(g[0] == Array((try alone.inputGradient(0)).prefix(seqs[s].prefix.count)))
            #expect(batched[s] == Array(batchedInputs[s].prefix(seqs[s].prefix.count)))
        }
        print("LlamaTrainingTests tiny: max |batched − alone| / max |alone| over logits and input gradients = \(worst)")
        #expect(worst < 1e-5, "max |batched − alone| / max |alone| = \(worst)")
    }

    /// Token rows are input rows too: the gradient `inputGradient` reports for a token row
    /// equals the prefix gradient of the same sequence with that token's embedding moved into
    /// the prefix.
    @Test func tokenRowGradientsEqualPrefixGradients() throws {
        let model = try TinyLlama.model.get()
        let V = model.config.vocabSize, C = model.config.embeddingLength
        let tokens = [5, 17, 3, 88, 41, 7]
        let rows = [[2, 4]]
        let loss = WeightedLogSoftmaxLoss(V: V, w: TinyLlama.random(2 * V, seed: 300))
        let pass = LlamaTrainingPass(model: model)
        let a = try pass.forward(batch: [LlamaSequence(tokens: tokens)], lossRows: rows)
        _ = try pass.backward(dLogits: [loss.gradient(a[0].logits)])
        let viaTokens = try pass.inputGradient(0)
        let asPrefix = LlamaSequence(tokens: Array(tokens[3...]), prefix: try model.embeddingRows(of: Array(tokens[..<3])))
        let b = try pass.forward(batch: [asPrefix], lossRows: rows)
        let viaPrefix = try pass.backward(dLogits: [loss.gradient(b[0].logits)])[0]
        let d = maxAbsDiff(viaTokens[..<(3 * C)], viaPrefix)
        #expect(viaTokens.count == tokens.count * C)
        #expect(d < 1e-5, "max |token-row gradient − prefix gradient| = \(d)")
        // rows after the last loss row get nothing
        #expect(viaTokens[(5 * C)...].allSatisfy { $0 == 0 })
    }

    @Test func misuseThrows() throws {
        let model = try TinyLlama.model.get()
        let pass = LlamaTrainingPass(model: model)
        #expect(throws: ModelError.self) { try pass.backward(dLogits: [[]]) }
        let seq = LlamaSequence(tokens: [1, 2, 3])
        #expect(throws: ModelError.self) { try pass.forward(batch: [seq], lossRows: [[3]]) }
        #expect(throws: ModelError.self) { try pass.forward(batch: [seq], lossRows: []) }
        #expect(throws: ModelError.self) { try pass.forward(batch: [LlamaSequence(tokens: [1], prefix: [1, 2])], lossRows: [[0]]) }
        _ = try pass.forward(batch: [seq], lossRows: [[1, 2]])
        #expect(throws: ModelError.self) { try pass.backward(dLogits: [[Float](repeating: 0, count: model.config.vocabSize)]) }
        // a sequence without loss rows is allowed and gets a zero gradient
        let out = try pass.forward(batch: [seq, LlamaSequence(tokens: [4], prefix: [Float](repeating: 1, count: 64))], lossRows: [[2], []])
        let g = try pass.backward(dLogits: [[Float](repeating: 0.01, count: model.config.vocabSize), []])
        #expect(out[1].logits.isEmpty && g[1].count == 64 && g[1].allSatisfy { $0 == 0 })
    }
}
