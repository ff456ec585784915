import Testing
import Foundation
import Glibc
import Models
import Posix
import Recipe
import TestSupport

/// The prompt states on disk (`PromptStateStore`): what is stored comes back exactly, across
/// a reopen; the oldest slot is reused first; and nothing damaged, torn or made for another
/// LLM is ever handed out (a miss instead, or a file started over, with the reason). On the
/// real model, continuing from stored states gives the logits of a full prefill bit for bit.
@Suite struct PromptStateStoreTests {
    // C 8, L 2, NKV·HS 4: small enough to write every case by hand
    static let config = LlamaConfig(vocabSize: 16, contextLength: 64, embeddingLength: 8, blockCount: 2, feedForwardLength: 16,
                                    headCount: 2, headCountKV: 1, ropeFreqBase: 10000, rmsEps: 1e-5, ropeDimensionCount: 4)
    static let rows = 3

    func open(_ dir: URL, capacity: Int = 4, fingerprint: String = "llm-a", config: LlamaConfig = config) throws -> PromptStateStore {
        try PromptStateStore(path: dir.appendingPathComponent("states").path, config: config, prefixRows: Self.rows,
                             capacity: capacity, fingerprint: fingerprint)
    }

    /// A prefix [rows, C] and a cache holding `rows` positions of keys and values, from `seed`.
    func sample(_ seed: UInt64, config: LlamaConfig = config) -> (prefix: [Float], cache: LlamaKVCache) {
        let prefix = SeededRandom.floats(Self.rows * config.embeddingLength, seed: seed)
        let cache = LlamaKVCache(config: config, capacity: 8)
        let n = Self.rows * config.kvWidth
        cache.append(positions: Self.rows) { l, k, v in
            let kv = SeededRandom.floats(2 * n, seed: seed &* 31 &+ UInt64(l))
            k.update(from: kv, count: n)
            v.update(from: Array(kv[n...]), count: n)
        }
        return (prefix, cache)
    }

    func sameStates(_ a: LlamaKVCache, _ b: LlamaKVCache) -> Bool {
        let n = Self.rows * a.config.kvWidth
        return a.count == b.count && (0..<a.config.blockCount).allSatisfy { l in
            (0..<n).allSatisfy { a.keys(l)[$0] == b.keys(l)[$0] && a.values(l)[$0] == b.values(l)[$0] }
        }
    }

    /// The cache never takes the disk's last room (the fact log shares it): no slot is
    /// written while less than `keepFreeBytes` would be left, and `maxBytes` caps the slots.
    @Test func cacheKeepsTheDisksReserveAndItsByteCap() throws {
        let dir = try Fixtures.temporaryDirectory("states-space")
        let path = dir.appendingPathComponent("states").path
        let (p, cache) = sample(1)
        let free = try FileDescriptor.open(dir.path, O_RDONLY).availableBytes()
        #expect(free > 0)
        let full = try PromptStateStore(path: path, config: Self.config, prefixRows: Self.rows, capacity: 4,
                                        fingerprint: "llm-a", keepFreeBytes: free + (1 << 30))
        #expect(!full.store(p, from: cache))
        #expect(full.counts.skippedForSpace == 1 && full.counts.entries == 0)
        #expect(full.lookup(p, reserving: 0) == nil)
        // One 4 KiB slot fits in 9000 bytes twice: the capacity of 4 shrinks to 2.
        let capped = try PromptStateStore(path: path + "-capped", config: Self.config, prefixRows: Self.rows, capacity: 4,
                                          fingerprint: "llm-a", maxBytes: 9000)
        #expect(capped.capacity == 2)
        #expect(capped.store(p, from: cache) && capped.counts.skippedForSpace == 0)
        #expect(throws: RecipeError.self) {
            try PromptStateStore(path: path + "-none", config: Self.config, prefixRows: Self.rows, capacity: 4,
                                 fingerprint: "llm-a", maxBytes: 100)
        }
    }

    @Test func storedStatesComeBackExactlyAfterAReopen() throws {
        let dir = try Fixtures.temporaryDirectory("states")
        let (p, cache) = sample(1)
        do {
            let store = try open(dir)
            #expect(store.resetReason == "new")
            #expect(store.lookup(p, reserving: 4) == nil)
            #expect(store.store(p, from: cache))
            #expect(!store.store(p, from: cache), "kept already")
            #expect(store.contains(p) && !store.contains(sample(2).prefix))
            let back = try #require(store.lookup(p, reserving: 4))
            #expect(sameStates(back, cache) && back.capacity >= Self.rows + 4)
            #expect(store.counts == PromptStateStore.Counts(hits: 1, misses: 1, stored: 1, errors: 0, entries: 1))
        }
        let store = try open(dir)
        #expect(store.resetReason == nil)
        let back = try #require(store.lookup(p, reserving: 0))
        #expect(sameStates(back, cache))
        #expect(store.lookup(sample(2).prefix, reserving: 0) == nil)
        // another shape is never stored
        #expect(!store.store(Array(p.prefix(8)), from: cache))
    }

    @Test func theOldestSlotIsReusedFirstAcrossAReopen() throws {
        let dir = try Fixtures.temporaryDirectory("states")
        let s = (1...4).map { sample(UInt64($0)) }
        do {
            let store = try open(dir, capacity: 2)
            for x in s.prefix(3) { #expect(store.store(x.prefix, from: x.cache)) }
            #expect(!store.contains(s[0].prefix) && store.contains(s[1].prefix) && store.contains(s[2].prefix))
        }
        let store = try open(dir, capacity: 2)
        #expect(store.store(s[3].prefix, from: s[3].cache))
        #expect(!store.contains(s[1].prefix), "the oldest (s1) goes first, also after a reopen")
        #expect(sameStates(try #require(store.lookup(s[2].prefix, reserving: 0)), s[2].cache))
        #expect(sameStates(try #require(store.lookup(s[3].prefix, reserving: 0)), s[3].cache))
    }

    /// Byte offset of slot `slot`'s payload (the layout in PromptStateStore.swift).
    func payloadOffset(_ slot: Int, capacity: Int = 4) -> Int {
        let payload = 4 * Self.rows * (8 + 2 * 2 * 4)
        return 4096 + (32 * capacity + 4095) / 4096 * 4096 + slot * ((payload + 4095) / 4096 * 4096)
    }

    func overwrite(_ dir: URL, at offset: Int, _ bytes: [UInt8]) throws {
        let h = try FileHandle(forUpdating: dir.appendingPathComponent("states"))
        try h.seek(toOffset: UInt64(offset))
        try h.write(contentsOf: Data(bytes))
        try h.close()
    }

    @Test func aDamagedSlotIsAMissAndIsFreed() throws {
        let dir = try Fixtures.temporaryDirectory("states")
        let a = sample(1), b = sample(2)
        do {
            let store = try open(dir)
            store.store(a.prefix, from: a.cache)
            store.store(b.prefix, from: b.cache)
        }
        // a flipped byte in the keys of slot 0, and in the stored prefix of slot 1
        try overwrite(dir, at: payloadOffset(0) + 4 * 24 + 5, [0x5A])
        try overwrite(dir, at: payloadOffset(1) + 1, [0xA5])
        let store = try open(dir)
        #expect(store.counts.entries == 2, "the index alone looks fine")
        #expect(store.lookup(a.prefix, reserving: 0) == nil)
        #expect(store.lookup(b.prefix, reserving: 0) == nil)
        #expect(store.counts == PromptStateStore.Counts(hits: 0, misses: 2, stored: 0, errors: 2, entries: 0))
        #expect(store.store(a.prefix, from: a.cache), "a freed slot takes new states")
        #expect(sameStates(try #require(store.lookup(a.prefix, reserving: 0)), a.cache))
    }

    @Test func aTornWriteIsAMiss() throws {
        let dir = try Fixtures.temporaryDirectory("states")
        let a = sample(1)
        do { try open(dir).store(a.prefix, from: a.cache) }
        // the index entry made it to disk, the payload's second half did not
        try overwrite(dir, at: payloadOffset(0) + 200, [UInt8](repeating: 0, count: 200))
        let store = try open(dir)
        #expect(store.lookup(a.prefix, reserving: 0) == nil)
        #expect(store.counts.errors == 1)
    }

    @Test func aFileForAnotherLLMShapeOrCapacityStartsOver() throws {
        let dir = try Fixtures.temporaryDirectory("states")
        let a = sample(1)
        do { try open(dir).store(a.prefix, from: a.cache) }
        /// Opens (each store is closed before the next opens), checks, stores `a` again.
        func reopen(capacity: Int, fingerprint: String, expect reason: String) throws {
            let store = try open(dir, capacity: capacity, fingerprint: fingerprint)
            #expect(store.resetReason == reason && store.counts.entries == 0 && store.lookup(a.prefix, reserving: 0) == nil)
            #expect(store.store(a.prefix, from: a.cache) && store.lookup(a.prefix, reserving: 0) != nil)
        }
        try reopen(capacity: 4, fingerprint: "llm-b", expect: "another LLM")
        try reopen(capacity: 8, fingerprint: "llm-b", expect: "other shapes or capacity")
        try overwrite(dir, at: 100, [1, 2, 3])
        try reopen(capacity: 8, fingerprint: "llm-b", expect: "damaged header")
        try Data("not a state file at all".utf8).write(to: dir.appendingPathComponent("states"))
        try reopen(capacity: 4, fingerprint: "llm-a", expect: "not a prompt state file")
    }

    @Test func aFailedWriteOrReadIsCountedAndNeverAnswers() throws {
        let dir = try Fixtures.temporaryDirectory("states")
        let a = sample(1), b = sample(2)
        let store = try open(dir)
        // The disk fills up while the payload is written: nothing kept, nothing thrown.
        let full = FaultPlan().fail(.write, onCall: 2, with: .noSpace)
        #expect(!full.run { store.store(a.prefix, from: a.cache) })
        #expect(store.counts == PromptStateStore.Counts(stored: 0, errors: 1, entries: 0))
        #expect(store.lookup(a.prefix, reserving: 0) == nil)
        // A read that fails is a miss, and the slot is freed.
        #expect(store.store(b.prefix, from: b.cache))
        let broken = FaultPlan().fail(.read, with: .io)
        #expect(broken.run { store.lookup(b.prefix, reserving: 0) } == nil)
        #expect(store.counts.errors == 2 && store.counts.entries == 0)
        #expect(store.store(b.prefix, from: b.cache) && store.lookup(b.prefix, reserving: 0) != nil, "and it heals")
    }

    @Test func aSecondOpenIsRefusedAndBadArgumentsAreErrors() throws {
        let dir = try Fixtures.temporaryDirectory("states")
        let first = try open(dir)
        #expect { _ = try open(dir) } throws: { e in
            (e as? RecipeError) == .promptStates(file: dir.appendingPathComponent("states").path, reason: "in use by another process (one worker per file)")
        }
        _ = first
        #expect(throws: RecipeError.self) { _ = try open(dir, capacity: 0) }
    }

    /// SmolLM2: a question continued from stored prompt states gets the logits of prefilling
    /// prompt and question together, up to the rounding of a differently batched prefill
    /// (the in-memory prompt cache differs from it the same way), and the same answer.
    @Test func continuingFromStoredStatesMatchesAFullPrefill() throws {
        let lm = try LanguageModel(path: Fixtures.smolLM2.path)
        let c = lm.llama.config, C = c.embeddingLength
        let prompt = SeededRandom.floats(3 * C, seed: 7, scale: 0.05)
        let tokens = lm.tokenizer.encode("The Eiffel Tower is located in")
        let full = Array(try lm.llama.forward(LlamaSequence(tokens: tokens, prefix: prompt), logits: .last).logits)

        let dir = try Fixtures.temporaryDirectory("states")
        let store = try PromptStateStore(path: dir.appendingPathComponent("states").path, config: c, prefixRows: 3,
                                         capacity: 2, fingerprint: "smollm2")
        let prefill = lm.llama.makeCache(capacity: 3)
        _ = try lm.llama.forward(LlamaSequence(tokens: [], prefix: prompt), cache: prefill, logits: .none)
        #expect(store.store(prompt, from: prefill))
        let cache = try #require(store.lookup(prompt, reserving: tokens.count))
        let continued = Array(try lm.llama.forward(LlamaSequence(tokens: tokens), cache: cache, logits: .last).logits)
        let diff = zip(continued, full).map { abs($0 - $1) }.max()!, scale = full.map(abs).max()!
        print("prompt states: max |Δ logit| \(diff) of max |logit| \(scale)")
        #expect(diff <= 1e-4 * scale)
        #expect(continued.indices.max { continued[$0] < continued[$1] } == full.indices.max { full[$0] < full[$1] })
    }
}
