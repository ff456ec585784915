// Continuous batching in the worker answers many clients in one pass and must answer each
// exactly as alone: a sequence's logits may not depend on what it is batched with. Checked
// bit for bit for prefills of every kernel class (one row: the decode matvec; up to
// `quantizedMaxRows`: quantized tiles; longer: sgemm), with and without cached positions,
// for the logits of one, two and all rows, and for decode steps of several sequences.
import Testing
import Kernels
import Models
import WeightFormats

@Suite struct LlamaBatchInvarianceTests {
    static func bits(_ a: some Collection<Float>) -> [UInt32] { a.map(\.bitPattern) }

    @Test(arguments: [GGMLType.q4_1, .q8_0, .f16, .f32])
    func aSequenceGetsTheSameLogitsInAnyBatch(type: GGMLType) throws {
        let model = try LlamaTinyModel.model(type: type)
        let C = model.config.embeddingLength
        let prefix = try model.embeddingRows(of: [3, 4])
        let seqs = [LlamaSequence(tokens: [5]), LlamaSequence(tokens: [6, 7, 8], prefix: prefix), LlamaSequence(tokens: Array(10..<50)),
                    LlamaSequence(tokens: [9]), LlamaSequence(tokens: Array(20..<53)), LlamaSequence(tokens: [11, 12])]
        let logits: [LlamaLogitRows] = [.last, .all, .last, .rows([0]), .rows([1, 30]), .all]
        // a few positions already cached for some of them
        let pasts = [3, 0, 0, 7, 1, 0]
        func caches() throws -> [LlamaKVCache] {
            try pasts.map { n in
                let c = model.makeCache(capacity: 4)
                if n > 0 { _ = try model.forward(LlamaSequence(tokens: Array(60..<(60 + n))), cache: c, logits: .none) }
                return c
            }
        }
        let batchCaches = try caches(), aloneCaches = try caches()
        let batched = try model.forward(batch: seqs, caches: batchCaches, logitsPerSequence: logits)
        for s in seqs.indices {
            let alone = try model.forward(seqs[s], cache: aloneCaches[s], logits: logits[s])
            #expect(batched[s].rows == alone.rows)
            #expect(Self.bits(batched[s].logits) == Self.bits(alone.logits), "\(type) sequence \(s): batched logits differ from alone")
            #expect(batchCaches[s].count == aloneCaches[s].count && batchCaches[s].count == pasts[s] + seqs[s].tokens.count + seqs[s].prefix.count / C)
        }
        // decode steps of all of them together, then of a subset, against each alone
        var tokens = [13, 14, 15, 16, 17, 18]
        for round in 0..<3 {
            let pick = round == 1 ? [0, 2, 5] : Array(seqs.indices)
            let together = try model.decode(tokens: pick.map { tokens[$0] }, caches: pick.map { batchCaches[$0] })
            for (i, s) in pick.enumerated() {
                let alone = try model.decode(token: tokens[s], cache: aloneCaches[s])
                #expect(Self.bits(together[i]) == Self.bits(alone), "\(type) round \(round) sequence \(s): batched decode differs")
                tokens[s] = argmax(alone)
            }
        }
    }

    @Test func aBatchedDecodeRefusesBadInputWithoutTouchingTheCaches() throws {
        let model = try LlamaTinyModel.model(type: .q4_1)
        let a = model.makeCache(), b = model.makeCache()
        _ = try model.forward(LlamaSequence(tokens: [1, 2]), cache: a, logits: .none)
        _ = try model.forward(LlamaSequence(tokens: [3]), cache: b, logits: .none)
        #expect(throws: ModelError.self) { try model.decode(tokens: [4, model.config.vocabSize], caches: [a, b]) }
        #expect(throws: ModelError.self) { try model.decode(tokens: [4, 5], caches: [a, a]) }
        #expect(throws: ModelError.self) { try model.decode(tokens: [4], caches: [a, b]) }
        let full = model.makeCache(capacity: model.config.contextLength)
        _ = try model.forward(LlamaSequence(tokens: Array(repeating: 1, count: model.config.contextLength)), cache: full, logits: .none)
        #expect(throws: ModelError.self) { try model.decode(tokens: [4, 5], caches: [a, full]) }
        #expect(a.count == 2 && b.count == 1)
        #expect(try model.decode(tokens: [], caches: []).isEmpty)
    }

    /// A decode step and a prefill of one row per cache run the same block forward, so the
    /// logits and the caches they leave are the same bits, alone and batched.
    @Test(arguments: [GGMLType.q4_1, .q8_0])
    func aDecodeStepIsAOneRowPrefill(type: GGMLType) throws {
        let model = try LlamaTinyModel.model(type: type)
        let prompts = [[1, 2, 3], [40, 41], Array(5..<30)]
        func caches() throws -> [LlamaKVCache] {
            try prompts.map { p in
                let c = model.makeCache(capacity: 4)
                _ = try model.forward(LlamaSequence(tokens: p), cache: c, logits: .none)
                return c
            }
        }
        let decoded = try caches(), prefilled = try caches()
        for step in 0..<4 {
            let tokens = prompts.indices.map { ($0 * 7 + step * 3) % model.config.vocabSize }
            let pick = step == 2 ? [1] : Array(prompts.indices)  // one step alone
            let a = try model.decode(tokens: pick.map { tokens[$0] }, caches: pick.map { decoded[$0] })
            let b = try model.forward(batch: pick.map { LlamaSequence(tokens: [tokens[$0]]) }, caches: pick.map { prefilled[$0] }, logits: .last)
            for (i, s) in pick.enumerated() {
                #expect(Self.bits(a[i]) == Self.bits(b[i].last), "\(type) step \(step) sequence \(s): decode differs from a one-row prefill")
            }
        }
        // the caches hold the same keys and values: the next full-logits prefill agrees
        for s in prompts.indices {
            let a = try model.forward(LlamaSequence(tokens: [7, 8]), cache: decoded[s], logits: .all)
            let b = try model.forward(LlamaSequence(tokens: [7, 8]), cache: prefilled[s], logits: .all)
            #expect(Self.bits(a.logits) == Self.bits(b.logits), "\(type) sequence \(s): the caches differ")
        }
    }
}
