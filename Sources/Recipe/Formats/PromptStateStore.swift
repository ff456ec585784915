// The keys and values of continuous prompts, kept on disk: the second tier behind the ask
// path's in-memory `LlamaPrefixCache`. A fact's prompt comes first in every question about
// it and attention is causal, so its rows' keys and values at every layer are the same for
// every question; computed once (when the fact is committed, or at its first ask) they turn
// the prompt's part of a later prefill into one read of L × P × 2 × NKV·HS floats (138 KiB
// for SmolLM2-135M with P = 3; 145 KiB with the prompt itself, which is stored too).
//
// This file is a cache, not a record: nothing in it is needed to answer correctly, so it
// follows none of the repository's durability rules (no fsync), and it never competes with
// the record for disk space: its size is capped (capacity and bytes), and a slot is not
// written while its file system has less than `keepFreeBytes` left, so the fact log that
// shares the disk keeps that room. Instead, nothing read from
// it is trusted: a slot is used only if its CRC-32C matches and its stored prompt equals the
// asked one byte for byte (so neither a torn write nor a hash collision can hand one fact's
// states to another); anything else is a miss, and the slot is freed. A header that does not
// match this LLM (fingerprint), these shapes or this capacity starts the file over.
//
// Layout (little-endian; `pread`/`pwrite`, no mapping, so a short file is an error, not a
// SIGBUS):
//   [0, 4096)          header: "RCPSTATE", version, L, NKV·HS, prefix rows P', C, capacity,
//                      slot bytes, fingerprint; CRC-32C of the rest in the last 4 bytes
//   [4096, +32·cap)    index, one entry per slot: sequence (0 = empty), prefix hash, payload
//                      CRC-32C, payload bytes, reserved
//   slots (4 KiB-aligned, `slotBytes` each): prefix [P', C], then per block l keys [P',
//                      NKV·HS] and values [P', NKV·HS], fp32 as `LlamaKVCache` holds them (a
//                      question continued from them gets the logits of one prefill of prompt
//                      and question to ~1e-6 relative: the rounding of another batching)
// Slots are reused oldest first (a ring): the newest facts keep theirs. A store writes the
// slot's index entry empty, then the payload, then the entry.
//
// Thread-safe (one lock around each call; a lookup holds it for one read).
import Foundation
import Glibc
import Models
import Posix

public final class PromptStateStore: @unchecked Sendable {
    public let path: String
    public let config: LlamaConfig
    /// P': rows per prefix (the prompt's, plus a leading token's if the editor has one).
    public let prefixRows: Int
    /// Slots; the oldest is reused when all are taken.
    public let capacity: Int
    /// Free bytes the file system must keep after a slot is written (room for the log).
    public let keepFreeBytes: Int64
    /// Why the file was started over at open (nil: its entries were kept).
    public let resetReason: String?

    public struct Counts: Sendable, Equatable {
        public var hits = 0, misses = 0, stored = 0
        /// Slots found damaged (CRC or prefix mismatch) and read or write failures: each is
        /// a miss or a state not kept, never a wrong answer.
        public var errors = 0
        public var entries = 0
        /// States not kept because the disk had less than `keepFreeBytes` left.
        public var skippedForSpace = 0
        public init(hits: Int = 0, misses: Int = 0, stored: Int = 0, errors: Int = 0, entries: Int = 0, skippedForSpace: Int = 0) {
            (self.hits, self.misses, self.stored, self.errors, self.entries) = (hits, misses, stored, errors, entries)
            self.skippedForSpace = skippedForSpace
        }
    }
    public var counts: Counts { lock.withLock { var c = tally; c.entries = slotOf.count; return c } }

    static let magic = Array("RCPSTATE".utf8)
    static let version: UInt32 = 1
    static let headerBytes = 4096
    static let entryBytes = 32

    let file: FileDescriptor
    private let lock = NSLock()
    let payloadBytes: Int
    let slotBytes: Int
    let slotsOffset: Int
    private var entries: [Entry]
    private var slotOf: [UInt64: Int]
    private var nextSlot: Int
    private var nextSequence: UInt64
    private var tally = Counts()
    /// One payload, reused by every read and write.
    private let staging: UnsafeMutableRawBufferPointer

    /// One index entry (32 bytes: sequence, hash, crc, bytes, 8 reserved).
    struct Entry: Equatable {
        var sequence: UInt64 = 0
        var hash: UInt64 = 0
        var crc: UInt32 = 0
        var bytes: UInt32 = 0
        static let empty = Entry()

        init(sequence: UInt64 = 0, hash: UInt64 = 0, crc: UInt32 = 0, bytes: UInt32 = 0) {
            (self.sequence, self.hash, self.crc, self.bytes) = (sequence, hash, crc, bytes)
        }

        init(_ raw: UnsafeRawBufferPointer, at o: Int) {
            self.init(sequence: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: UInt64.self)),
                      hash: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: o + 8, as: UInt64.self)),
                      crc: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: o + 16, as: UInt32.self)),
                      bytes: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: o + 20, as: UInt32.self)))
        }

        var encoded: [UInt8] {
            var b = [UInt8](repeating: 0, count: PromptStateStore.entryBytes)
            b.withUnsafeMutableBytes { raw in
                raw.storeBytes(of: sequence.littleEndian, toByteOffset: 0, as: UInt64.self)
                raw.storeBytes(of: hash.littleEndian, toByteOffset: 8, as: UInt64.self)
                raw.storeBytes(of: crc.littleEndian, toByteOffset: 16, as: UInt32.self)
                raw.storeBytes(of: bytes.littleEndian, toByteOffset: 20, as: UInt32.self)
            }
            return b
        }
    }

    /// The index as read at open: the entries to trust, and where writing goes on.
    struct Index {
        var entries: [Entry]
        var slotOf: [UInt64: Int] = [:]
        var nextSlot = 0
        var nextSequence: UInt64 = 1

        init(capacity: Int) { entries = Array(repeating: .empty, count: capacity) }

        /// From the index bytes of the file; the next slot written is the oldest (an empty one first).
        init(_ bytes: [UInt8], capacity: Int, payloadBytes: Int) {
            self.init(capacity: capacity)
            guard bytes.count == PromptStateStore.entryBytes * capacity else { return }
            var oldest: (sequence: UInt64, slot: Int)?
            bytes.withUnsafeBytes { raw in
                for slot in 0..<capacity {
                    let e = Entry(raw, at: slot * PromptStateStore.entryBytes)
                    // An entry for another payload size, or a hash seen twice, is not trusted.
                    if e.sequence != 0, Int(e.bytes) == payloadBytes, slotOf[e.hash] == nil {
                        entries[slot] = e
                        slotOf[e.hash] = slot
                        nextSequence = max(nextSequence, e.sequence + 1)
                    }
                    let s = entries[slot].sequence
                    if oldest == nil || s < oldest!.sequence { oldest = (s, slot) }
                }
            }
            nextSlot = oldest?.slot ?? 0
        }
    }

    /// Opens (creating, or starting over when it was made for another LLM or shape) the
    /// store at `path`, locked against a second process.
    /// - Parameters:
    ///   - fingerprint: names the LLM file (the states depend on it alone, given the prefix)
    ///   - prefixRows: P', rows of every prefix kept (others are never stored)
    ///   - maxBytes: the slots' bytes are capped here too (the capacity shrinks to fit)
    ///   - keepFreeBytes: a slot is not written while its file system has less left
    public init(path: String, config: LlamaConfig, prefixRows: Int, capacity: Int, fingerprint: String,
                maxBytes: Int = .max, keepFreeBytes: Int64 = 0) throws {
        let payloadBytes = 4 * prefixRows * (config.embeddingLength + 2 * config.blockCount * config.kvWidth)
        let slotBytes = (payloadBytes + 4095) / 4096 * 4096
        let capacity = min(capacity, maxBytes / max(1, slotBytes))
        guard prefixRows > 0, capacity > 0, capacity <= 1_000_000 else {
            throw RecipeError.invalidArgument("\(path): prompt states need prefix rows > 0 and a capacity in 1...1000000, "
                                              + "\(slotBytes) bytes each within \(maxBytes) bytes (got \(prefixRows), \(capacity))")
        }
        let fp = Array(fingerprint.utf8)
        guard fp.count <= Self.headerBytes - 64 else { throw RecipeError.invalidArgument("\(path): fingerprint too long") }
        self.path = path
        self.config = config
        self.prefixRows = prefixRows
        self.capacity = capacity
        self.keepFreeBytes = keepFreeBytes
        self.payloadBytes = payloadBytes
        self.slotBytes = slotBytes
        slotsOffset = Self.headerBytes + (Self.entryBytes * capacity + 4095) / 4096 * 4096
        // Everything that can fail happens before the last property is set (a throwing
        // class init runs no deinit before that, so nothing here needs undoing by hand).
        let file = try FileDescriptor.open(path, O_RDWR | O_CREAT | O_CLOEXEC, mode: 0o600)
        guard try file.tryLockExclusive() else {
            throw RecipeError.promptStates(file: path, reason: "in use by another process (one worker per file)")
        }
        let header = Self.header(config: config, prefixRows: prefixRows, capacity: capacity, slotBytes: slotBytes, fingerprint: fp)
        let found = try file.read(count: Self.headerBytes, at: 0)
        var reason: String?
        if found.isEmpty {
            reason = "new"
        } else if found != header {
            reason = Self.mismatch(found, expected: header)
        } else if try file.size() < slotsOffset {
            reason = "index cut short"
        }
        var index = Index(capacity: capacity)
        if reason != nil {
            try file.truncate(to: 0)
            try file.writeAll(header, at: 0)
            try file.truncate(to: slotsOffset + capacity * slotBytes)  // sparse: slots take space as they fill
        } else {
            index = Index(try file.read(count: Self.entryBytes * capacity, at: Self.headerBytes), capacity: capacity, payloadBytes: payloadBytes)
        }
        self.file = file
        resetReason = reason
        entries = index.entries
        slotOf = index.slotOf
        nextSlot = index.nextSlot
        nextSequence = index.nextSequence
        staging = .allocate(byteCount: payloadBytes, alignment: 64)
    }

    deinit { staging.deallocate() }

    /// Whether a prefix with this prefix's hash is kept (without reading it back).
    public func contains(_ prefix: [Float]) -> Bool { lock.withLock { slotOf[Self.hash(prefix)] != nil } }

    /// A new KV cache holding `prefix`'s keys and values, with room for `extra` more
    /// positions, if they are kept and intact; nil on a miss.
    public func lookup(_ prefix: [Float], reserving extra: Int) -> LlamaKVCache? {
        lock.lock()
        defer { lock.unlock() }
        guard prefix.count == prefixRows * config.embeddingLength, let slot = slotOf[Self.hash(prefix)] else {
            tally.misses += 1
            return nil
        }
        guard readPayload(slot), prefixMatches(prefix, slot: slot) else {
            tally.misses += 1
            return nil
        }
        tally.hits += 1
        let C = config.embeddingLength, rowFloats = prefixRows * config.kvWidth
        let cache = LlamaKVCache(config: config, capacity: prefixRows + extra)
        let floats = staging.baseAddress!.assumingMemoryBound(to: Float.self) + prefixRows * C
        cache.append(positions: prefixRows) { l, k, v in
            k.update(from: floats + 2 * l * rowFloats, count: rowFloats)
            v.update(from: floats + (2 * l + 1) * rowFloats, count: rowFloats)
        }
        return cache
    }

    /// Keeps the keys and values of `prefix` ([P', C]) from `cache`, a sequence that began
    /// with it, in the oldest slot. Returns whether they were written (false: already kept,
    /// another shape, or a write failed, which is counted in `errors`).
    @discardableResult
    public func store(_ prefix: [Float], from cache: LlamaKVCache) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        let C = config.embeddingLength, rowFloats = prefixRows * config.kvWidth
        let h = Self.hash(prefix)
        guard prefix.count == prefixRows * C, cache.count >= prefixRows, slotOf[h] == nil else { return false }
        // The file is sparse: a slot takes disk space as it is first written (and the file
        // system may not share blocks between a freed and a new one). Keep the room.
        if keepFreeBytes > 0, ((try? file.availableBytes()) ?? 0) < keepFreeBytes + Int64(slotBytes) {
            tally.skippedForSpace += 1
            return false
        }
        let slot = nextSlot
        nextSlot = (nextSlot + 1) % capacity
        if entries[slot].sequence != 0 { slotOf[entries[slot].hash] = nil }
        let floats = staging.baseAddress!.assumingMemoryBound(to: Float.self)
        prefix.withUnsafeBufferPointer { floats.update(from: $0.baseAddress!, count: prefix.count) }
        for l in 0..<config.blockCount {
            (floats + prefixRows * C + 2 * l * rowFloats).update(from: cache.keys(l), count: rowFloats)
            (floats + prefixRows * C + (2 * l + 1) * rowFloats).update(from: cache.values(l), count: rowFloats)
        }
        let entry = Entry(sequence: nextSequence, hash: h, crc: CRC32C.checksum(UnsafeRawBufferPointer(staging)), bytes: UInt32(payloadBytes))
        do {
            try writeEntry(.empty, slot: slot)
            try file.writeAll(UnsafeRawBufferPointer(staging), at: slotsOffset + slot * slotBytes)
            try writeEntry(entry, slot: slot)
        } catch {
            entries[slot] = .empty
            tally.errors += 1
            return false
        }
        nextSequence += 1
        slotOf[h] = slot
        tally.stored += 1
        return true
    }

    // MARK: - File

    private func writeEntry(_ e: Entry, slot: Int) throws {
        try file.writeAll(e.encoded, at: Self.headerBytes + slot * Self.entryBytes)
        entries[slot] = e
    }

    /// Reads slot `slot`'s payload into `staging` and checks its CRC; a slot that fails is freed.
    private func readPayload(_ slot: Int) -> Bool {
        var done = 0
        do {
            while done < payloadBytes {
                let n = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: staging[done...]), at: slotsOffset + slot * slotBytes + done)
                if n == 0 { break }
                done += n
            }
        } catch { done = -1 }
        if done == payloadBytes, CRC32C.checksum(UnsafeRawBufferPointer(staging)) == entries[slot].crc { return true }
        free(slot)
        return false
    }

    /// Whether the prefix in `staging` is `prefix`, byte for byte; a slot that fails is freed.
    private func prefixMatches(_ prefix: [Float], slot: Int) -> Bool {
        let same = prefix.withUnsafeBytes { memcmp($0.baseAddress!, staging.baseAddress!, $0.count) == 0 }
        if !same { free(slot) }
        return same
    }

    private func free(_ slot: Int) {
        tally.errors += 1
        slotOf[entries[slot].hash] = nil
        try? writeEntry(.empty, slot: slot)
        entries[slot] = .empty
    }

    // MARK: - Header and hash

    static func header(config: LlamaConfig, prefixRows: Int, capacity: Int, slotBytes: Int, fingerprint: [UInt8]) -> [UInt8] {
        var h = magic
        for v in [version, UInt32(config.blockCount), UInt32(config.kvWidth), UInt32(prefixRows), UInt32(config.embeddingLength),
                  UInt32(capacity), UInt32(slotBytes), UInt32(fingerprint.count)] {
            withUnsafeBytes(of: v.littleEndian) { h += $0 }
        }
        h += fingerprint
        h += [UInt8](repeating: 0, count: headerBytes - 4 - h.count)
        withUnsafeBytes(of: CRC32C.checksum(h).littleEndian) { h += $0 }
        return h
    }

    /// Why a header differs from the expected one, in words.
    static func mismatch(_ found: [UInt8], expected: [UInt8]) -> String {
        guard found.count == headerBytes, Array(found[0..<8]) == magic else { return "not a prompt state file" }
        let crc = found.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: headerBytes - 4, as: UInt32.self) }
        guard UInt32(littleEndian: crc) == CRC32C.checksum(Array(found[0..<(headerBytes - 4)])) else { return "damaged header" }
        if found[8..<12] != expected[8..<12] { return "another format version" }
        if found[12..<36] != expected[12..<36] { return "other shapes or capacity" }
        return "another LLM"
    }

    /// A 64-bit hash of the prefix bytes (a multiply-xorshift per 8 bytes): a fast index key;
    /// equality is always checked on the bytes themselves.
    static func hash(_ prefix: [Float]) -> UInt64 {
        prefix.withUnsafeBytes { raw in
            var h: UInt64 = 0xCBF2_9CE4_8422_2325 ^ UInt64(raw.count)
            var i = 0
            while i + 8 <= raw.count {
                h = (h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0x9E37_79B9_7F4A_7C15
                h ^= h >> 29
                i += 8
            }
            while i < raw.count {
                h = (h ^ UInt64(raw[i])) &* 0x9E37_79B9_7F4A_7C15
                i += 1
            }
            return h ^ (h >> 32)
        }
    }
}
