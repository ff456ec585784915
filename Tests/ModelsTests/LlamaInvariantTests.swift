// Properties the engine must keep whatever the weights: cached decode equals recomputation,
// prefix embeddings are interchangeable with tokens, batching changes nothing, and the
// quantized decode path agrees with the fp32 prefill path on every supported tensor type.
import Foundation
import Testing
import Kernels
import Models
import TestSupport
import WeightFormats

@Suite struct LlamaInvariantTests {
    func goldenTokens(_ name: String) throws -> [Int] {
        guard let p = try LlamaFixture.goldens.get().prompts.first(where: { $0.name == name }) else {
            throw ModelError.invalidInput("golden prompt \(name) missing")
        }
        return p.token_ids
    }

    /// Prefill of a head with a cache, then the rest through (a) single-token quantized decode
    /// and (b) a second cached prefill, against one full forward.
    @Test func cachedDecodeEqualsRecomputation() throws {
        let model = try LlamaFixture.model.get()
        let ids = try goldenTokens("chat_capital")
        let V = model.config.vocabSize
        let full = try model.forward(LlamaSequence(tokens: ids), logits: .all)
        let head = 20
        let cache = model.makeCache(capacity: 8)  // forces growth
        _ = try model.forward(LlamaSequence(tokens: Array(ids[..<head])), cache: cache, logits: .none)
        var worstDecode: Float = 0
        for t in head..<ids.count {
            let logits = try model.decode(token: ids[t], cache: cache)
            worstDecode = max(worstDecode, maxAbsDiff(logits, full.logits[t * V..<(t + 1) * V]))
        }
        #expect(cache.count == ids.count)
        #expect(worstDecode < 2e-3, "max |decode − full forward| = \(worstDecode)")
        print("LlamaInvariantTests: max |cached quantized decode − full forward| = \(worstDecode)")

        let cache2 = model.makeCache()
        _ = try model.forward(LlamaSequence(tokens: Array(ids[..<head])), cache: cache2, logits: .none)
        let rest = try model.forward(LlamaSequence(tokens: Array(ids[head...])), cache: cache2, logits: .all)
        let d = maxAbsDiff(rest.logits, full.logits[head * V..<ids.count * V])
        #expect(d < 1e-3, "max |cached prefill − full forward| = \(d)")
    }

    /// A token's own embedding row given as a prefix is the same input as the token.
    @Test func embeddingPrefixEqualsTokens() throws {
        let model = try LlamaFixture.model.get()
        let ids = try goldenTokens("plain")
        let plain = try model.forward(LlamaSequence(tokens: ids), logits: .all)
        let prefix = try model.embeddingRows(of: Array(ids[..<2]))
        #expect(prefix.count == 2 * model.config.embeddingLength)
        let viaPrefix = try model.forward(LlamaSequence(tokens: Array(ids[2...]), prefix: prefix), logits: .all)
        let d = maxAbsDiff(plain.logits, viaPrefix.logits)
        #expect(d < 1e-5, "max |prefix − tokens| = \(d)")
        // the whole input as prefix, no tokens
        let allPrefix = try model.forward(LlamaSequence(tokens: [], prefix: try model.embeddingRows(of: ids)), logits: .last)
        let d2 = maxAbsDiff(allPrefix.last, plain.last)  // .last takes the Q8_0 matvec LM head, .all the fp32 sgemm one
        #expect(d2 < 1e-4, "max |all-prefix − tokens| = \(d2)")
        // an explicit empty prefix is the plain forward
        let empty = try model.forward(LlamaSequence(tokens: ids, prefix: []), logits: .all)
        #expect(empty.logits == plain.logits)
        // requested rows are the same rows as in .all
        let some = try model.forward(LlamaSequence(tokens: ids), logits: .rows([3, 1]))
        let V = model.config.vocabSize
        #expect(Array(some.logits(at: 0)) == Array(plain.logits[3 * V..<4 * V]) || maxAbsDiff(some.logits(at: 0), plain.logits[3 * V..<4 * V]) < 1e-4)
        #expect(maxAbsDiff(some.logits(at: 1), plain.logits[1 * V..<2 * V]) < 1e-4)
    }

    /// Generation continued from a kept prefix's keys and values equals generation with the
    /// prefix in the prompt; the cache hits on the same prefix, misses on another, and
    /// evicts the least recently used entry.
    @Test func prefixCacheEqualsPrefixInThePrompt() throws {
        let model = try LlamaFixture.model.get()
        let ids = try goldenTokens("plain")
        let C = model.config.embeddingLength
        let p1 = try model.embeddingRows(of: [504, 3158, 314]), p2 = try model.embeddingRows(of: [1204, 314, 5458])
        let prefixes = LlamaPrefixCache(config: model.config, capacity: 1)
        for p in [p1, p1, p2, p1] {
            let direct = try model.generate(LlamaSequence(tokens: ids, prefix: p), maxTokens: 6)
            if let kv = prefixes.lookup(p, reserving: ids.count + 6) {
                #expect(kv.count == p.count / C)
                #expect(try model.generate(LlamaSequence(tokens: ids), maxTokens: 6, cache: kv) == direct)
            } else {
                let cache = model.makeCache()
                #expect(try model.generate(LlamaSequence(tokens: ids, prefix: p), maxTokens: 6, cache: cache) == direct)
                prefixes.store(p, from: cache)
            }
        }
        // p1 miss, p1 hit, p2 miss (evicts p1), p1 miss again
        #expect(prefixes.hits == 1 && prefixes.misses == 3 && prefixes.count == 1)
        let none = LlamaPrefixCache(config: model.config, capacity: 0)
        let cache = model.makeCache()
        _ = try model.forward(LlamaSequence(tokens: ids, prefix: p1), cache: cache, logits: .none)
        none.store(p1, from: cache)
        #expect(none.lookup(p1, reserving: 1) == nil && none.count == 0)
    }

    /// Stacking sequences of different lengths (with and without prefixes) changes nothing.
    @Test func batchEqualsOneByOne() throws {
        let model = try LlamaFixture.model.get()
        let seqs = [
            LlamaSequence(tokens: try goldenTokens("plain")),
            LlamaSequence(tokens: try goldenTokens("unicode"), prefix: try model.embeddingRows(of: [1, 2, 3])),
            LlamaSequence(tokens: try goldenTokens("spaces_newlines")),
        ]
        let batched = try model.forward(batch: seqs, logits: .all)
        var worst: Float = 0
        for (s, seq) in seqs.enumerated() {
            let single = try model.forward(seq, logits: .all)
            worst = max(worst, maxAbsDiff(single.logits, batched[s].logits))
        }
        #expect(worst < 1e-3, "max |batched − single| = \(worst)")
        // batched with caches continues each sequence separately
        let caches = seqs.map { _ in model.makeCache() }
        _ = try model.forward(batch: seqs, caches: caches, logits: .none)
        #expect(caches.map(\.count) == seqs.map { $0.tokens.count + $0.prefix.count / model.config.embeddingLength })
        let next = try model.forward(batch: seqs.map { _ in LlamaSequence(tokens: [504]) }, caches: caches, logits: .last)
        for (s, seq) in seqs.enumerated() {
            let ref = try model.forward(LlamaSequence(tokens: seq.tokens + [504], prefix: seq.prefix), logits: .last)
            let d = maxAbsDiff(ref.last, next[s].last)
            #expect(d < 1e-3, "sequence \(s): max |batched cached step − full| = \(d)")
        }
    }

    @Test func refusesBadInput() throws {
        let model = try LlamaFixture.model.get()
        #expect(throws: ModelError.self) { try model.forward(LlamaSequence(tokens: [model.config.vocabSize])) }
        #expect(throws: ModelError.self) { try model.forward(LlamaSequence(tokens: [-1])) }
        #expect(throws: ModelError.self) { try model.forward(LlamaSequence(tokens: [1], prefix: [1, 2, 3])) }
        #expect(throws: ModelError.self) { try model.forward(LlamaSequence(tokens: [])) }
        #expect(throws: ModelError.self) { try model.forward(LlamaSequence(tokens: [1, 2]), logits: .rows([2])) }
        #expect(throws: ModelError.self) { try model.embeddingRows(of: [49152]) }
    }

    /// Quantized decode (matvec on the file's blocks) against the fp32 prefill on a tiny random
    /// model in every supported type; tied and untied LM heads.
    @Test(arguments: [GGMLType.q4_0, .q4_1, .q8_0, .f16, .bf16, .f32, .q5_0])
    func tinyModelDecodeMatchesPrefill(type: GGMLType) throws {
        for tied in [false, true] {
            let model = try LlamaTinyModel.model(type: type, tied: tied)
            #expect(model.weights.tiedOutput == tied)
            let V = model.config.vocabSize
            let ids = [3, 17, 42, 5, 88, 0, 61, 29, 7, 95]
            let full = try model.forward(LlamaSequence(tokens: ids), logits: .all)
            let cache = model.makeCache(capacity: 2)
            var worst: Float = 0, scale: Float = 0
            for (t, id) in ids.enumerated() {
                let logits = try model.decode(token: id, cache: cache)
                worst = max(worst, maxAbsDiff(logits, full.logits[t * V..<(t + 1) * V]))
                scale = max(scale, logits.map { abs($0) }.max()!)
            }
            #expect(worst <= 1e-4 * max(1, scale), "\(type) tied=\(tied): max |decode − prefill| = \(worst) (|logits| up to \(scale))")
            let g = try model.generate(LlamaSequence(tokens: Array(ids[..<3])), maxTokens: 5, stopTokens: [])
            #expect(g.count == 5)
        }
    }

    @Test func refusesBrokenFiles() throws {
        func load(_ w: GGUFWriter) throws -> Llama {
            try Llama(gguf: GGUFFile(file: MappedFile(copying: try w.serialized(), path: "broken.gguf")))
        }
        let missing = try LlamaTinyModel.writer(type: .f32) { $0.removeAll { $0.0 == "blk.1.ffn_up.weight" } }
        #expect(throws: ModelError.missingTensor(file: "broken.gguf", tensor: "blk.1.ffn_up.weight")) { try load(missing) }
        let shaped = try LlamaTinyModel.writer(type: .f32) { t in
            let i = t.firstIndex { $0.0 == "blk.0.attn_k.weight" }!
            t[i] = (t[i].0, [LlamaTinyModel.C, 48], .f32, [Float](repeating: 0.1, count: LlamaTinyModel.C * 48))
        }
        #expect(throws: ModelError.shapeMismatch(file: "broken.gguf", tensor: "blk.0.attn_k.weight",
                                                 expected: [LlamaTinyModel.C, 32], actual: [LlamaTinyModel.C, 48])) { try load(shaped) }
        var arch = try LlamaTinyModel.writer(type: .f32)
        arch.set("general.architecture", "gpt2")
        #expect(throws: ModelError.self) { try load(arch) }
        var heads = try LlamaTinyModel.writer(type: .f32)
        heads.set("llama.attention.head_count_kv", 4)
        #expect(throws: ModelError.self) { try load(heads) }
    }
}

@Suite struct LlamaGenerationTests {
    /// Stop tokens end generation and are not returned; a false from the callback ends it
    /// after the token it saw; greedy tokens equal the argmax of a full forward.
    @Test func stopTokensAndCallback() throws {
        let model = try LlamaTinyModel.model(type: .q8_0)
        let prompt = LlamaSequence(tokens: [3, 17, 42])
        let free = try model.generate(prompt, maxTokens: 8)
        #expect(free.count == 8)
        // every generated token is the argmax after the prompt and the tokens before it
        for i in 0..<free.count {
            let out = try model.forward(LlamaSequence(tokens: prompt.tokens + Array(free[..<i])), logits: .last)
            #expect(argmax(Array(out.last)) == free[i], "step \(i)")
        }
        let stop = free[3]
        let firstStop = free.firstIndex(of: stop)!
        let stopped = try model.generate(prompt, maxTokens: 8, stopTokens: [stop])
        #expect(stopped == Array(free[..<firstStop]))
        var seen: [Int] = []
        let early = try model.generate(prompt, maxTokens: 8) { seen.append($0); return seen.count < 2 }
        #expect(early == Array(free[..<2]) && seen == early)
        #expect(try model.generate(prompt, maxTokens: 0).isEmpty)
    }

    /// One step for several sequences in one call (stacked rows) equals single decode steps.
    @Test func batchedStepEqualsDecode() throws {
        let model = try LlamaTinyModel.model(type: .q4_1)
        let prompts = [[1, 2, 3], [40, 41], [7, 8, 9, 10, 11]]
        let a = prompts.map { _ in model.makeCache() }, b = prompts.map { _ in model.makeCache() }
        _ = try model.forward(batch: prompts.map { LlamaSequence(tokens: $0) }, caches: a, logits: .none)
        for (i, p) in prompts.enumerated() { _ = try model.forward(LlamaSequence(tokens: p), cache: b[i], logits: .none) }
        let step = try model.forward(batch: prompts.map { _ in LlamaSequence(tokens: [5]) }, caches: a, logits: .last)
        var worst: Float = 0
        for i in prompts.indices {
            let single = try model.decode(token: 5, cache: b[i])
            worst = max(worst, maxAbsDiff(single, step[i].last))
        }
        #expect(worst < 1e-4, "max |batched step − decode| = \(worst)")
    }
}

@Suite struct LlamaBatchRowsTests {
    @Test func perSequenceLogitRows() throws {
        let model = try LlamaTinyModel.model(type: .f16)
        let seqs = [LlamaSequence(tokens: [1, 2, 3, 4]), LlamaSequence(tokens: [9, 8])]
        let out = try model.forward(batch: seqs, logitsPerSequence: [.rows([0, 2]), .all])
        #expect(out[0].rows == [0, 2] && out[1].rows == [0, 1])
        let ref0 = try model.forward(seqs[0], logits: .all), ref1 = try model.forward(seqs[1], logits: .all)
        let V = model.config.vocabSize
        let d = max(maxAbsDiff(out[0].logits(at: 1), ref0.logits[2 * V..<3 * V]), maxAbsDiff(out[1].logits, ref1.logits))
        #expect(d < 1e-4, "max |per-sequence rows − single| = \(d)")
        #expect(throws: ModelError.self) { try model.forward(batch: seqs, logitsPerSequence: [.last]) }
    }
}

@Suite struct LlamaKVCacheTests {
    /// A copied cache continues exactly like the original; truncating rewinds to a shared prefix.
    @Test func copyAndTruncate() throws {
        let model = try LlamaTinyModel.model(type: .q4_0)
        let cache = model.makeCache(capacity: 4)
        _ = try model.forward(LlamaSequence(tokens: [1, 2, 3]), cache: cache, logits: .none)
        let fork = cache.copy()
        let a = try model.decode(token: 7, cache: cache)
        let b = try model.decode(token: 7, cache: fork)
        #expect(a == b)
        cache.truncate(to: 3)
        let c = try model.decode(token: 9, cache: cache)
        let fresh = try model.forward(LlamaSequence(tokens: [1, 2, 3, 9]), logits: .last)
        let d = maxAbsDiff(c, fresh.last)
        #expect(cache.count == 4 && d < 1e-4, "max |after truncate − fresh| = \(d)")
        // the context limit is enforced
        let full = model.makeCache()
        _ = try model.forward(LlamaSequence(tokens: Array(repeating: 1, count: LlamaTinyModel.context)), cache: full, logits: .none)
        #expect(throws: ModelError.self) { try model.decode(token: 1, cache: full) }
    }
}
