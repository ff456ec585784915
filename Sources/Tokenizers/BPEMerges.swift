// The merge table of a byte-level BPE model and the merge loop over one word.
//
// Merges work on token ids rather than strings: a word starts as one id per byte (the
// vocabulary entry of that byte's GPT-2 character), and the table maps an adjacent id pair
// to (rank, merged id). The loop is the reference's (smollm2_ref.py `bpe`, openai/gpt-2
// `encoder.py`): find the lowest-ranked adjacent pair, merge every occurrence of it left to
// right, repeat until no pair has a rank.

struct BPEMerges: Sendable {
    /// (left id << 32 | right id) -> (rank << 32 | merged id).
    private let table: [UInt64: UInt64]
    /// The id of each byte's single-character token, or -1 when the vocabulary lacks it
    /// (SmolLM2 has no token for bytes such as 0x04 or 0xF5 that never occur in its data).
    let byteIDs: [Int32]

    var count: Int { table.count }

    /// Builds the table from GGUF / merges.txt lines "left right" (rank = position).
    /// - Parameter source: file name for error messages.
    init(merges: [String], vocabulary: [String: Int], source: String) throws {
        var table = [UInt64: UInt64](minimumCapacity: merges.count)
        for (rank, line) in merges.enumerated() {
            let entry = rank + 1
            // Split on scalars, not Characters: a space followed by a combining mark is one
            // Character and would hide the separator.
            let parts = line.unicodeScalars.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw TokenizerError.vocabulary(
                    file: source, entry: entry,
                    reason: "merge \(Self.quote(line)) is not two tokens separated by one space")
            }
            let left = String(String.UnicodeScalarView(parts[0])), right = String(String.UnicodeScalarView(parts[1]))
            guard let l = vocabulary[left] else {
                throw TokenizerError.vocabulary(
                    file: source, entry: entry,
                    reason: "merge \(Self.quote(line)): left token \(Self.quote(left)) is not in the vocabulary")
            }
            guard let r = vocabulary[right] else {
                throw TokenizerError.vocabulary(
                    file: source, entry: entry,
                    reason: "merge \(Self.quote(line)): right token \(Self.quote(right)) is not in the vocabulary")
            }
            guard let m = vocabulary[left + right] else {
                throw TokenizerError.vocabulary(
                    file: source, entry: entry,
                    reason: "merge \(Self.quote(line)): merged token \(Self.quote(left + right)) is not in the vocabulary")
            }
            let key = UInt64(l) << 32 | UInt64(r)
            // A repeated pair keeps its first (lowest) rank, as llama.cpp does.
            if table[key] == nil { table[key] = UInt64(rank) << 32 | UInt64(m) }
        }
        self.table = table
        self.byteIDs = ByteLevel.scalars.map { s in
            vocabulary[String(Character(s))].map(Int32.init) ?? -1
        }
    }

    /// `s` in double quotes with control characters escaped, for error messages.
    static func quote(_ s: String) -> String { s.debugDescription }

    /// Rank and merged id of the pair (a, b), or nil if the pair never merges.
    @inline(__always)
    func lookup(_ a: Int32, _ b: Int32) -> (rank: UInt32, merged: Int32)? {
        guard a >= 0, b >= 0, let v = table[UInt64(UInt32(a)) << 32 | UInt64(UInt32(b))] else { return nil }
        return (UInt32(truncatingIfNeeded: v >> 32), Int32(truncatingIfNeeded: v & 0xFFFF_FFFF))
    }

    /// Appends the token ids of one word (`bytes[range]`) to `out`. Bytes without a token
    /// are dropped, as llama.cpp drops them (there is no byte fallback in GPT-2 BPE).
    /// - Parameter symbols: scratch storage reused across words.
    func encodeWord(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>,
                    symbols: inout [Int32], into out: inout [Int]) {
        symbols.removeAll(keepingCapacity: true)
        for i in range { symbols.append(byteIDs[Int(bytes[i])]) }
        mergeAll(&symbols)
        for s in symbols where s >= 0 { out.append(Int(s)) }
    }

    /// Words longer than this (in bytes) go through the O(n log n) `mergeAllHeap`; shorter
    /// ones through the plain O(n^2) loop, which is faster for them. Both give the same result.
    static let heapThreshold = 48

    /// Runs the merge loop on `symbols` in place.
    func mergeAll(_ symbols: inout [Int32]) {
        if symbols.count > Self.heapThreshold {
            mergeAllHeap(&symbols)
        } else {
            mergeAllQuadratic(&symbols)
        }
    }

    /// The reference loop as written: one scan for the best pair, one pass to merge it.
    func mergeAllQuadratic(_ symbols: inout [Int32]) {
        let kept = symbols.withUnsafeMutableBufferPointer { sym -> Int in
            var n = sym.count
            while n > 1 {
                // The lowest-ranked pair; ties cannot happen (one rank per pair).
                var bestRank = UInt32.max, bestA: Int32 = -1, bestB: Int32 = -1, merged: Int32 = -1
                for i in 0..<(n - 1) {
                    if let hit = lookup(sym[i], sym[i + 1]), hit.rank < bestRank {
                        bestRank = hit.rank
                        bestA = sym[i]; bestB = sym[i + 1]; merged = hit.merged
                    }
                }
                if merged < 0 { break }
                // Merge every occurrence of (bestA, bestB), left to right, compacting in place.
                var w = 0, i = 0
                while i < n {
                    if i + 1 < n && sym[i] == bestA && sym[i + 1] == bestB {
                        sym[w] = merged
                        i += 2
                    } else {
                        sym[w] = sym[i]
                        i += 1
                    }
                    w += 1
                }
                n = w
            }
            return n
        }
        symbols.removeLast(symbols.count - kept)
    }
}
