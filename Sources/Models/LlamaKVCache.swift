// The keys and values of the positions a sequence has seen, per block, in fp32
// (llama.cpp keeps fp16; fp32 keeps decode equal to recomputation). Grows by doubling.
// One cache belongs to one sequence at a time.
import Kernels

public final class LlamaKVCache: @unchecked Sendable {
    public let config: LlamaConfig
    /// Positions stored (the next token goes at position `count`).
    public private(set) var count: Int = 0
    /// Positions that fit before the next growth.
    public private(set) var capacity: Int
    /// L × [capacity, NKV·HS]
    private var keys: [FloatBuffer]
    /// L × [capacity, NKV·HS]
    private var values: [FloatBuffer]

    public init(config: LlamaConfig, capacity: Int = 256) {
        self.config = config
        let cap = max(1, min(capacity, config.contextLength))
        self.capacity = cap
        keys = (0..<config.blockCount).map { _ in FloatBuffer(count: cap * config.kvWidth) }
        values = (0..<config.blockCount).map { _ in FloatBuffer(count: cap * config.kvWidth) }
    }

    /// [capacity, NKV·HS] keys of block `l`.
    @inlinable public func keys(_ l: Int) -> UnsafeMutablePointer<Float> { keysStorage(l) }
    /// [capacity, NKV·HS] values of block `l`.
    @inlinable public func values(_ l: Int) -> UnsafeMutablePointer<Float> { valuesStorage(l) }
    @usableFromInline func keysStorage(_ l: Int) -> UnsafeMutablePointer<Float> { keys[l].p }
    @usableFromInline func valuesStorage(_ l: Int) -> UnsafeMutablePointer<Float> { values[l].p }

    /// Makes room for `n` positions in total (n ≤ context length, checked by the caller).
    public func reserve(_ n: Int) {
        guard n > capacity else { return }
        let newCap = min(config.contextLength, max(n, 2 * capacity))
        let w = config.kvWidth
        func grow(_ b: FloatBuffer) -> FloatBuffer {
            let nb = FloatBuffer(count: newCap * w)
            nb.p.update(from: b.p, count: count * w)
            return nb
        }
        keys = keys.map(grow)
        values = values.map(grow)
        capacity = newCap
    }

    /// Marks `n` more positions as filled (after a forward wrote them).
    func advance(_ n: Int) { count += n }

    /// Forgets everything after the first `n` positions (n ≤ count), e.g. to reuse a shared prefix.
    public func truncate(to n: Int) { count = max(0, min(n, count)) }

    /// Forgets everything.
    public func reset() { count = 0 }

    /// Appends `n` positions whose keys and values `fill` writes (e.g. a prefix's rows read
    /// back from disk): `fill(l, keys, values)` gets block l's [n, NKV·HS] destinations.
    public func append(positions n: Int, _ fill: (_ l: Int, _ keys: UnsafeMutablePointer<Float>, _ values: UnsafeMutablePointer<Float>) -> Void) {
        precondition(n >= 0 && count + n <= config.contextLength, "LlamaKVCache.append: past the context length")
        reserve(count + n)
        let w = config.kvWidth
        for l in 0..<config.blockCount { fill(l, keys[l].p + count * w, values[l].p + count * w) }
        count += n
    }

    /// An independent copy of the first `positions` positions (default: all), with room for
    /// `capacity` in all.
    public func copy(positions: Int? = nil, capacity: Int? = nil) -> LlamaKVCache {
        let n = min(count, positions ?? count)
        let c = LlamaKVCache(config: config, capacity: max(n, capacity ?? n, 1))
        let w = config.kvWidth
        for l in 0..<config.blockCount {
            c.keys[l].p.update(from: keys[l].p, count: n * w)
            c.values[l].p.update(from: values[l].p, count: n * w)
        }
        c.count = n
        return c
    }
}
