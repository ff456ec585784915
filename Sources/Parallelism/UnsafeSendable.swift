// The one place where a value the compiler cannot prove safe to share (a raw pointer, a
// closure) is promised to be: the workers of a parallel loop only read it or write
// disjoint ranges, which the compiler cannot see.

/// A value handed to the workers of `parallelFor`/`parallelRanges` (or GCD).
public struct UnsafeSendable<Value>: @unchecked Sendable {
    public let value: Value
    @inlinable public init(_ value: Value) { self.value = value }
}
