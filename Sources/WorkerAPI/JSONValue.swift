// Any JSON value: the request `id` the worker echoes, and the tree the worker reads a request
// line into before its fields are decoded (`JSONValue.decode`). Protocol.md gives every field
// one JSON type (`JSONKind`); a number is an `integer` when it has no fraction (`2` or `2.0`).
import Foundation

/// A JSON value. A number is kept as `integer` when it is written as one, or is whole and
/// within ±2^53 however written (`2.0`, `1e2`); otherwise as `number`. Either way `kind`
/// calls every whole number that fits an Int an `integer`, as Protocol.md does.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// The largest magnitude up to which every whole Double is an exact integer.
    static let exactIntegers = 9_007_199_254_740_992.0

    /// `x` as a JSON number: `integer` when whole and exact, else `number`.
    public init(number x: Double) {
        if x == x.rounded(), abs(x) <= Self.exactIntegers { self = .integer(Int(x)) } else { self = .number(x) }
    }

    /// The JSON type Protocol.md names: a whole `number` that fits an Int is an `integer` too.
    public var kind: JSONKind {
        switch self {
        case .null: return .null
        case .bool: return .boolean
        case .integer: return .integer
        case .number(let x): return Int(exactly: x) != nil ? .integer : .number
        case .string: return .string
        case .array: return .array
        case .object: return .object
        }
    }

    /// The integer, for an `integer` or a whole `number` that fits an Int.
    public var integerValue: Int? {
        switch self {
        case .integer(let i): return i
        case .number(let x): return Int(exactly: x)
        default: return nil
        }
    }

    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
}

extension JSONValue {
    /// JSONSerialization's booleans are instances of one NSNumber subclass (__NSCFBoolean);
    /// numbers never are. Swift's casts bridge both ways (`true as? Int` is 1), so the class
    /// is what tells them apart.
    private static let booleanClass = ObjectIdentifier(type(of: NSNumber(value: true)))
    /// NSNumber's `objCType` of integers (a JSON number written without fraction or exponent).
    private static let signedTypes: Set<String> = ["q", "l", "i", "s", "c"], unsignedTypes: Set<String> = ["Q", "L", "I", "S", "C"]

    /// The value of an object JSONSerialization returned (`[String: Any]`, `[Any]`, String,
    /// NSNumber, NSNull); nil for anything else.
    public init?(jsonObject v: Any) {
        switch v {
        case let s as String: self = .string(s)
        case is NSNull: self = .null
        case let o as [String: Any]:
            var members: [String: JSONValue] = [:]
            members.reserveCapacity(o.count)
            for (k, x) in o {
                guard let value = JSONValue(jsonObject: x) else { return nil }
                members[k] = value
            }
            self = .object(members)
        case let a as [Any]:
            var items: [JSONValue] = []
            items.reserveCapacity(a.count)
            for x in a {
                guard let value = JSONValue(jsonObject: x) else { return nil }
                items.append(value)
            }
            self = .array(items)
        case let n as NSNumber:
            if ObjectIdentifier(type(of: n as AnyObject)) == Self.booleanClass {
                self = .bool(n.boolValue)
            } else if Self.signedTypes.contains(String(cString: n.objCType)) {
                self = .integer(n.intValue)
            } else if Self.unsignedTypes.contains(String(cString: n.objCType)), let i = Int(exactly: n.uint64Value) {
                self = .integer(i)
            } else {
                self = JSONValue(number: n.doubleValue)  // written with a fraction or an exponent, or past Int
            }
        default: return nil
        }
    }
}

extension JSONValue: Codable {
    public init(from decoder: Decoder) throws {
        if let tree = decoder as? JSONValueDecoder {
            self = tree.value
            return
        }
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .integer(i) }
        else if let x = try? c.decode(Double.self) { self = JSONValue(number: x) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else if let o = try? c.decode([String: JSONValue].self) { self = .object(o) }
        else { throw DecodingError.dataCorruptedError(in: c, debugDescription: "not a JSON value") }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .integer(let i): try c.encode(i)
        case .number(let x): if x.isFinite { try c.encode(x) } else { try c.encodeNil() }
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }
}

/// The JSON type of a value, as Protocol.md names them in its tables and in
/// `invalid_field`'s `expected`.
public enum JSONKind: String, Sendable, Codable {
    case string, integer, number, boolean, object, array, null

    /// "a string", "an integer", ... for messages.
    public var article: String {
        switch self {
        case .integer, .object, .array: return "an \(rawValue)"
        case .null: return "null"
        default: return "a \(rawValue)"
        }
    }
}
