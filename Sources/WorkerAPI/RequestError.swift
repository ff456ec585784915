// The error of a reply: {"ok": false, "error": {"code", "message", ...}} (Protocol.md,
// "Error codes"). The worker throws it while it handles a request and sends it; a client
// gets it back from `WorkerClient.call` when the worker refused the request.
import Foundation

/// A request's failure; the optional parts go into the error object when set.
public struct RequestError: Error, Sendable, Equatable, Codable, CustomStringConvertible {
    /// `bad_json`, `unknown_op`, `missing_field`, `invalid_field`, ... (Protocol.md).
    public let code: String
    public let message: String
    /// The request field at fault (`missing_field`, `invalid_field`, `too_large`).
    public var field: String?
    /// The JSON type the field must have (`invalid_field` for a wrong type).
    public var expected: String?
    /// What the request has and what is allowed (`too_large`: the question's tokens).
    public var tokens: Int?
    public var limit: Int?

    public init(_ code: String, _ message: String, field: String? = nil, expected: String? = nil, tokens: Int? = nil, limit: Int? = nil) {
        self.code = code
        self.message = message
        self.field = field
        self.expected = expected
        self.tokens = tokens
        self.limit = limit
    }

    public var description: String { "\(code): \(message)" }

    /// `missing_field`: a required field is absent (or null).
    public static func missing(_ field: String) -> RequestError { RequestError("missing_field", "'\(field)' is required", field: field) }

    /// `invalid_field` for a value out of range or otherwise refused (`why` follows the name).
    public static func invalid(_ field: String, _ why: String) -> RequestError { RequestError("invalid_field", "'\(field)' \(why)", field: field) }

    /// `invalid_field` for a value of the wrong JSON type; `note` follows the expected type
    /// (" between 1 and 64", " (true or false)").
    public static func wrongType(_ field: String, expected: JSONKind, found: JSONKind, note: String = "") -> RequestError {
        RequestError("invalid_field", "'\(field)' must be \(expected.article)\(note), got \(found.article)",
                     field: field, expected: expected.rawValue)
    }
}
