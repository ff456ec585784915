// The merge loop for long words in O(n log n), with exactly the reference's result.
//
// The reference rescans the whole word for its best pair after every merge, which is
// quadratic: a 100 kB run of letters (one "word") took 10 s. Here the word is a linked list
// and every adjacent pair with a rank sits in a min-heap keyed by (rank, position). The
// reference's round, "merge every occurrence of the best pair, left to right", is kept
// exactly: all heap entries of the current rank come out in position order (the key's low
// half), and pairs created during the round enter the heap only when the round ends, so a
// new pair of lower rank cannot cut in (it waits for the next round, as in the reference).
// A merged symbol keeps its left position, so positions stay in text order.

extension BPEMerges {
    func mergeAllHeap(_ symbols: inout [Int32]) {
        let n = symbols.count
        if n < 2 { return }
        var next = [Int32](0..<Int32(n)).map { $0 + 1 }  // n means "none"
        var prev = [Int32](0..<Int32(n)).map { $0 - 1 }  // -1 means "none"
        var alive = [Bool](repeating: true, count: n)
        var heap = MinHeap()
        heap.storage.reserveCapacity(n)

        for i in 0..<(n - 1) {
            if let hit = lookup(symbols[i], symbols[i + 1]) { heap.push(key(hit.rank, i)) }
        }
        var created: [UInt64] = []

        while let top = heap.peek() {
            let rank = UInt32(truncatingIfNeeded: top >> 32)
            // One round: every entry of this rank, in position order.
            while let entry = heap.peek(), UInt32(truncatingIfNeeded: entry >> 32) == rank {
                heap.pop()
                let p = Int(UInt32(truncatingIfNeeded: entry))
                // Stale entries: the left symbol was merged away, or the pair changed since.
                guard alive[p], Int(next[p]) < n else { continue }
                let q = Int(next[p])
                guard let hit = lookup(symbols[p], symbols[q]), hit.rank == rank else { continue }
                symbols[p] = hit.merged
                alive[q] = false
                let r = Int(next[q])
                next[p] = Int32(r)
                if r < n { prev[r] = Int32(p) }
                // The pairs this merge created, queued until the round ends.
                let l = Int(prev[p])
                if l >= 0, let h = lookup(symbols[l], symbols[p]) { created.append(key(h.rank, l)) }
                if r < n, let h = lookup(symbols[p], symbols[r]) { created.append(key(h.rank, p)) }
            }
            for k in created { heap.push(k) }
            created.removeAll(keepingCapacity: true)
        }

        var w = 0
        for i in 0..<n where alive[i] {
            symbols[w] = symbols[i]
            w += 1
        }
        symbols.removeLast(n - w)
    }

    @inline(__always)
    private func key(_ rank: UInt32, _ position: Int) -> UInt64 {
        UInt64(rank) << 32 | UInt64(UInt32(position))
    }
}

/// A binary min-heap of UInt64 keys.
private struct MinHeap {
    var storage: [UInt64] = []

    func peek() -> UInt64? { storage.first }

    mutating func push(_ x: UInt64) {
        storage.append(x)
        var i = storage.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if storage[parent] <= storage[i] { break }
            storage.swapAt(parent, i)
            i = parent
        }
    }

    mutating func pop() {
        let last = storage.removeLast()
        if storage.isEmpty { return }
        storage[0] = last
        var i = 0
        let n = storage.count
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < n && storage[l] < storage[m] { m = l }
            if r < n && storage[r] < storage[m] { m = r }
            if m == i { break }
            storage.swapAt(m, i)
            i = m
        }
    }
}
