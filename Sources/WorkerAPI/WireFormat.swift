// How requests and replies become bytes: one JSON object per line, keys sorted, slashes not
// escaped (Protocol.md). Protocol.md shows some keys always, null when there is nothing
// (`"fact": null`), which Swift's synthesized coding would leave out; and a number that is
// not finite has no JSON form, so it is sent as null and read back as NaN.
import Foundation

public enum WireFormat {
    /// The encoder of every line (a fresh one per call: it is cheap, and nothing is shared
    /// between threads).
    public static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }

    /// `value` as one line, newline included.
    public static func line<T: Encodable>(_ value: T) throws -> [UInt8] {
        Array(try encoder().encode(value)) + [0x0A]
    }

    /// `T` from one line (without its newline).
    public static func decode<T: Decodable>(_ type: T.Type, from line: some Collection<UInt8>) throws -> T {
        try JSONDecoder().decode(type, from: Data(line))
    }
}

extension KeyedEncodingContainer {
    /// `value`, or null when it is nil: the key is always there.
    mutating func encodeOrNull<T: Encodable>(_ value: T?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) } else { try encodeNil(forKey: key) }
    }

    /// A number, null when it is not finite.
    mutating func encodeNumber(_ x: Double?, forKey key: Key) throws {
        if let x, x.isFinite { try encode(x, forKey: key) } else { try encodeNil(forKey: key) }
    }
}

extension KeyedDecodingContainer {
    /// A number the worker sends as null when it is not finite: NaN then.
    func decodeNumber(forKey key: Key) throws -> Double {
        try decodeNil(forKey: key) ? .nan : try decode(Double.self, forKey: key)
    }
}
