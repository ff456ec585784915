// Picking tokens from logits: argmax (greedy decoding) and top-k (tests, diagnostics).

/// Index of the largest value; ties go to the lower index (as numpy's argmax).
/// - Parameters:
///   - x: [n]
public func argmax(_ x: UnsafePointer<Float>, _ n: Int) -> Int {
    var best = 0
    var bv = -Float.infinity
    for i in 0..<n where x[i] > bv { bv = x[i]; best = i }
    return best
}

/// Index of the largest value of an array; ties go to the lower index.
public func argmax(_ x: [Float]) -> Int { x.withUnsafeBufferPointer { argmax($0.baseAddress!, x.count) } }

/// The k largest values' indices, descending by value, ties by lower index.
/// - Parameters:
///   - x: [n]
public func topK(_ x: UnsafePointer<Float>, _ n: Int, k: Int) -> [Int] {
    let k = min(k, n)
    guard k > 0 else { return [] }
    // a small sorted buffer: n is the vocabulary, k is ~10
    var ids: [Int] = []
    ids.reserveCapacity(k + 1)
    func before(_ a: Int, _ b: Int) -> Bool { x[a] > x[b] || (x[a] == x[b] && a < b) }
    for i in 0..<n {
        if ids.count == k && !before(i, ids[k - 1]) { continue }
        var pos = ids.count
        while pos > 0 && before(i, ids[pos - 1]) { pos -= 1 }
        ids.insert(i, at: pos)
        if ids.count > k { ids.removeLast() }
    }
    return ids
}

/// `topK` of an array.
public func topK(_ x: [Float], k: Int) -> [Int] { x.withUnsafeBufferPointer { topK($0.baseAddress!, x.count, k: k) } }
