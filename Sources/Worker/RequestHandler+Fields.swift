// Reading a request line: JSONSerialization parses it (what it accepts, and its messages in
// `bad_json`, are the protocol's), then the `WorkerAPI` request types decode the tree, which
// checks every field's JSON type (`RequestFields`). The values are checked here, against
// the ranges of Protocol.md and the config's limits.
import Foundation
import WorkerAPI

extension RequestHandler {
    /// The request object of a line; `bad_json` when it is not JSON or not an object.
    static func parse(_ line: ArraySlice<UInt8>) throws -> [String: JSONValue] {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: Data(line), options: []) } catch {
            throw RequestError("bad_json", "the request is not valid JSON: \(FactParser.describe(error))")
        }
        guard let request = object as? [String: Any] else {
            throw RequestError("bad_json", "the request must be a JSON object, got \(FactParser.kind(of: object))")
        }
        guard case .object(let members)? = JSONValue(jsonObject: request) else {
            throw RequestError("internal", "the parsed request holds a value JSON does not have")
        }
        return members
    }

    /// The request of a parsed line: `op` and the op's fields, each of its JSON type.
    func decode(_ object: [String: JSONValue]) throws -> Request {
        try JSONValue.object(object).decode(Request.self, userInfo: [.maxGenerationTokens: state.config.limits.maxGenerationTokens])
    }

    /// An integer field in `range`, `d` when absent.
    func integer(_ field: String, _ value: Int?, default d: Int, range: ClosedRange<Int>) throws -> Int {
        guard let i = value else { return d }
        guard range.contains(i) else { throw RequestError.invalid(field, "must be between \(range.lowerBound) and \(range.upperBound)") }
        return i
    }

    /// `stop`: at most 8 strings, each 1 to 64 bytes, as llama.cpp's server and OpenAI-style
    /// APIs take it.
    func stopStrings(_ list: [String]) throws -> [String] {
        guard list.count <= 8 else { throw RequestError.invalid("stop", "may hold at most 8 strings, got \(list.count)") }
        for (i, s) in list.enumerated() where !(1...64).contains(s.utf8.count) {
            throw RequestError.invalid("stop[\(i)]", "must be 1 to 64 bytes")
        }
        return list
    }
}
