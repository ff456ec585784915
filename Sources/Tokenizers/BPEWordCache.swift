// A bounded, thread-safe cache from a short word's bytes to its token ids.
//
// Natural text repeats a few thousand words, so most words skip the merge loop. Keys are
// the raw bytes packed into two integers (words up to 16 bytes, which covers nearly all
// English words with their leading space): no allocation for a lookup, and no String
// equality, which would wrongly treat canonically equivalent but different bytes as equal.

import Foundation

final class BPEWordCache: @unchecked Sendable {
    /// A word of at most 16 bytes, packed little-endian, with its length.
    struct Key: Hashable {
        var low: UInt64 = 0
        var high: UInt64 = 0
        var count: Int = 0

        static let maxBytes = 16

        /// The key of `bytes[range]`, or nil when the word is too long to cache.
        @inline(__always)
        init?(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) {
            guard range.count <= Self.maxBytes else { return nil }
            count = range.count
            for (k, i) in range.enumerated() {
                if k < 8 { low |= UInt64(bytes[i]) << (8 * k) } else { high |= UInt64(bytes[i]) << (8 * (k - 8)) }
            }
        }
    }

    private let lock = NSLock()
    // Guarded by `lock`.
    private var entries: [Key: [Int32]] = [:]
    /// Entries kept before the cache is emptied and starts over (a plain bound, which
    /// is enough for text whose vocabulary is stable, and cheap).
    let capacity: Int

    init(capacity: Int = 65_536) {
        self.capacity = capacity
    }

    func get(_ key: Key) -> [Int32]? {
        lock.lock()
        defer { lock.unlock() }
        return entries[key]
    }

    func put(_ key: Key, _ ids: [Int32]) {
        lock.lock()
        defer { lock.unlock() }
        if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
        entries[key] = ids
    }
}
