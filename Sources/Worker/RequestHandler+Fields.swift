// Reading a request's fields with the JSON types Protocol.md gives them. JSONSerialization
// returns JSON numbers and booleans alike as NSNumber, and Swift's casts bridge them both
// ways (`true as? Int` is 1, `1 as? Bool` is true), so a plain cast would take
// `"max_tokens": true` for 1 and `"include_prompt": 1` for true. Every field is read here,
// through `JSONKind`, and a value of another type is refused with `invalid_field` naming
// the field, the expected type and the type found.
import Foundation

/// The JSON type of a parsed value.
enum JSONKind: String {
    case string, integer, number, boolean, object, array, null

    /// JSONSerialization's booleans are instances of one NSNumber subclass (__NSCFBoolean),
    /// numbers never are.
    private static let booleanClass = ObjectIdentifier(type(of: NSNumber(value: true)))

    init(of v: Any) {
        switch v {
        case is String: self = .string
        case is NSNull: self = .null
        case is [String: Any]: self = .object
        case is [Any]: self = .array
        case let n as NSNumber:
            if ObjectIdentifier(type(of: n as AnyObject)) == Self.booleanClass { self = .boolean }
            else if let d = Double(exactly: n.doubleValue), d == d.rounded(), Int(exactly: d) != nil { self = .integer }
            else { self = .number }
        default: self = .null
        }
    }

    /// "a string", "an integer", ... for messages.
    var article: String {
        switch self {
        case .integer, .object, .array: return "an \(rawValue)"
        case .null: return "null"
        default: return "a \(rawValue)"
        }
    }
}

extension RequestError {
    /// `invalid_field` for a value of the wrong JSON type.
    static func wrongType(_ field: String, expected: JSONKind, found value: Any, note: String = "") -> RequestError {
        RequestError("invalid_field", "'\(field)' must be \(expected.article)\(note), got \(JSONKind(of: value).article)",
                     field: field, expected: expected.rawValue)
    }
}

extension RequestHandler {
    /// The field's value, nil when absent or null (optional fields).
    func value(_ r: [String: Any], _ key: String) -> Any? {
        guard let v = r[key], !(v is NSNull) else { return nil }
        return v
    }

    /// A string field; `parent` names the object it is in (`fact`, `facts[2]`) for errors.
    func string(_ r: [String: Any], _ key: String, in parent: String? = nil) throws -> String? {
        guard let v = value(r, key) else { return nil }
        guard JSONKind(of: v) == .string, let s = v as? String else {
            throw RequestError.wrongType(parent.map { "\($0).\(key)" } ?? key, expected: .string, found: v)
        }
        return s
    }

    /// An integer in `range` (an integral number such as 2.0 counts: JSON has one number type).
    func integer(_ r: [String: Any], _ key: String, default d: Int, range: ClosedRange<Int>) throws -> Int {
        guard let v = value(r, key) else { return d }
        let note = " between \(range.lowerBound) and \(range.upperBound)"
        guard JSONKind(of: v) == .integer, let i = Int(exactly: (v as! NSNumber).doubleValue) else {
            throw RequestError.wrongType(key, expected: .integer, found: v, note: note)
        }
        guard range.contains(i) else { throw RequestError.invalid(key, "must be\(note)") }
        return i
    }

    func flag(_ r: [String: Any], _ key: String) throws -> Bool { try optionalFlag(r, key) ?? false }

    /// A boolean field, nil when absent or null (the config's default then applies).
    func optionalFlag(_ r: [String: Any], _ key: String) throws -> Bool? {
        guard let v = value(r, key) else { return nil }
        guard JSONKind(of: v) == .boolean, let b = v as? Bool else { throw RequestError.wrongType(key, expected: .boolean, found: v, note: " (true or false)") }
        return b
    }

    /// `stop`: a string or an array of strings that end an answer (at most 8, each 1 to 64
    /// bytes), as llama.cpp's server and OpenAI-style APIs take it.
    func stopStrings(_ r: [String: Any]) throws -> [String] {
        guard let v = value(r, "stop") else { return [] }
        let list: [Any]
        switch JSONKind(of: v) {
        case .string: list = [v]
        case .array: list = v as! [Any]
        default: throw RequestError.wrongType("stop", expected: .array, found: v, note: " of strings (or a string)")
        }
        guard list.count <= 8 else { throw RequestError.invalid("stop", "may hold at most 8 strings, got \(list.count)") }
        return try list.enumerated().map { i, item in
            guard JSONKind(of: item) == .string, let s = item as? String else {
                throw RequestError.wrongType("stop[\(i)]", expected: .string, found: item)
            }
            guard (1...64).contains(s.utf8.count) else { throw RequestError.invalid("stop[\(i)]", "must be 1 to 64 bytes") }
            return s
        }
    }
}
