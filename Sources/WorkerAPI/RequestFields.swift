// Reading a request's fields with the JSON types Protocol.md gives them. Every request type's
// `init(from:)` reads its fields here, each as a `JSONValue` whose kind is checked, so that a
// value of another type is refused with `invalid_field` naming the field as the request has
// it (`max_tokens`, `fact.id`, `facts[2].target`), the expected type and the type found, and
// `"max_tokens": true` is never taken for 1 nor `"include_prompt": 1` for true. A field given
// as null counts as absent. Values are checked against ranges and limits by the worker.
import Foundation

extension CodingUserInfoKey {
    /// The worker's `limits.maxGenerationTokens` (Int), named in the message of a `max_tokens`
    /// of the wrong type ("must be an integer between 1 and 256").
    public static let maxGenerationTokens = CodingUserInfoKey(rawValue: "recipe.maxGenerationTokens")!
}

/// A field's name in messages: its coding path from the request (`facts[2].target`).
func fieldName(_ path: [CodingKey]) -> String {
    var name = ""
    for key in path {
        if let i = key.intValue { name += "[\(i)]" } else { name += (name.isEmpty ? "" : ".") + key.stringValue }
    }
    return name
}

/// The fields of one request object (or of a fact object inside one).
struct RequestFields<Key: CodingKey> {
    let container: KeyedDecodingContainer<Key>
    let path: [CodingKey]

    init(_ decoder: Decoder, _ keys: Key.Type) throws {
        container = try decoder.container(keyedBy: keys)
        path = decoder.codingPath
    }

    func name(_ key: Key) -> String { fieldName(path + [key]) }

    /// The field's value, nil when absent or null.
    func value(_ key: Key) throws -> JSONValue? {
        guard let v = try container.decodeIfPresent(JSONValue.self, forKey: key), v != .null else { return nil }
        return v
    }

    func string(_ key: Key) throws -> String? {
        guard let v = try value(key) else { return nil }
        guard case .string(let s) = v else { throw RequestError.wrongType(name(key), expected: .string, found: v.kind) }
        return s
    }

    /// A required string: `missing_field` when absent or null.
    func requiredString(_ key: Key) throws -> String {
        guard let s = try string(key) else { throw RequestError.missing(name(key)) }
        return s
    }

    /// An integer (a number without a fraction: 2 or 2.0); `note` describes its range.
    func integer(_ key: Key, note: String) throws -> Int? {
        guard let v = try value(key) else { return nil }
        guard v.kind == .integer, let i = v.integerValue else { throw RequestError.wrongType(name(key), expected: .integer, found: v.kind, note: note) }
        return i
    }

    func boolean(_ key: Key) throws -> Bool? {
        guard let v = try value(key) else { return nil }
        guard case .bool(let b) = v else { throw RequestError.wrongType(name(key), expected: .boolean, found: v.kind, note: " (true or false)") }
        return b
    }

    /// A string or an array of strings (`stop`), as a list.
    func strings(_ key: Key) throws -> [String]? {
        guard let v = try value(key) else { return nil }
        switch v {
        case .string(let s): return [s]
        case .array(let items):
            return try items.enumerated().map { i, item in
                guard case .string(let s) = item else {
                    throw RequestError.wrongType("\(name(key))[\(i)]", expected: .string, found: item.kind)
                }
                return s
            }
        default: throw RequestError.wrongType(name(key), expected: .array, found: v.kind, note: " of strings (or a string)")
        }
    }

    /// An object decoded as `T` (whose `init(from:)` checks that it is one), nil when absent or null.
    func object<T: Decodable>(_ type: T.Type, _ key: Key) throws -> T? {
        try container.decodeIfPresent(type, forKey: key)
    }

    /// An array of `T`, nil when absent or null; `note` describes its elements (" of facts").
    func array<T: Decodable>(_ type: T.Type, _ key: Key, note: String) throws -> [T]? {
        guard let v = try value(key) else { return nil }
        guard case .array = v else { throw RequestError.wrongType(name(key), expected: .array, found: v.kind, note: note) }
        return try container.decode([T].self, forKey: key)
    }
}
