// An owned, 64-byte aligned block of Floats: model weights, activations and caches are
// views into these (llm.c's "one buffer, many views"), freed when the owner goes away.

public final class FloatBuffer: @unchecked Sendable {
    /// [count], zero-initialized
    public let p: UnsafeMutablePointer<Float>
    public let count: Int

    public init(count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * 4, alignment: 64)
        p = raw.initializeMemory(as: Float.self, repeating: 0, count: max(1, count))
    }

    /// A copy of `values`.
    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { p.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { p.deallocate() }

    /// The contents as an array (copy).
    public var array: [Float] { Array(UnsafeBufferPointer(start: p, count: count)) }
}
