// A deterministic stand-in for the real encoder: each statement's key and prompt are
// pseudo-random vectors seeded by a hash of its normalized text (unit-length keys), the
// sentinel key is zero (so any fact whose key points the query's way beats it). For
// tests, benchmarks and dry runs of the worker without a model. Counts its calls.
import Glibc

public final class HashingFactEncoder: FactEncoder, @unchecked Sendable {
    public let keyDimension: Int
    public let promptRows: Int
    public let promptWidth: Int
    public let fingerprint: String
    private var lock = pthread_mutex_t()
    private var _calls = 0
    private var _encoded = 0
    /// When set, `encode` throws this text (to test encoder failures).
    public var failure: String? {
        get { locked { _failure } }
        set { locked { _failure = newValue } }
    }
    private var _failure: String?

    public init(keyDimension: Int = 16, promptRows: Int = 3, promptWidth: Int = 8, fingerprint: String = "hashing-v1") {
        self.keyDimension = keyDimension
        self.promptRows = promptRows
        self.promptWidth = promptWidth
        self.fingerprint = fingerprint
        pthread_mutex_init(&lock, nil)
    }

    deinit { pthread_mutex_destroy(&lock) }

    /// `encode` calls so far.
    public var calls: Int { locked { _calls } }
    /// Statements encoded so far.
    public var encoded: Int { locked { _encoded } }

    public func encode(_ statements: [String]) throws -> (keys: [Float], prompts: [Float]) {
        if let f = failure { throw StorageError.encoderFailed(f) }
        locked { _calls += 1; _encoded += statements.count }
        var keys: [Float] = [], prompts: [Float] = []
        keys.reserveCapacity(statements.count * keyDimension)
        prompts.reserveCapacity(statements.count * promptRowFloats)
        for s in statements {
            keys += key(for: s)
            prompts += Self.vector(seed: Self.hash(FactText.key(s)) ^ 0x9E37_79B9_7F4A_7C15, count: promptRowFloats)
        }
        return (keys, prompts)
    }

    public func sentinel() -> (key: [Float], prompt: [Float]) {
        ([Float](repeating: 0, count: keyDimension), [Float](repeating: 0.5, count: promptRowFloats))
    }

    /// The unit key of `statement` (also a query that retrieves exactly it).
    public func key(for statement: String) -> [Float] {
        let v = Self.vector(seed: Self.hash(FactText.key(statement)), count: keyDimension)
        let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return v.map { $0 / max(norm, 1e-12) }
    }

    static func hash(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return h
    }

    /// xorshift64* floats in [-1, 1).
    static func vector(seed: UInt64, count: Int) -> [Float] {
        var x = seed == 0 ? 0x2545_F491_4F6C_DD1D : seed
        return (0..<count).map { _ in
            x ^= x >> 12; x ^= x << 25; x ^= x >> 27
            let r = x &* 0x2545_F491_4F6C_DD1D
            return Float(r >> 40) / Float(1 << 23) - 1
        }
    }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return body()
    }
}
