// The protocol's types against the wire: every line of `Fixtures/wire-lines.jsonl` (written
// by hand from Protocol.md, keys sorted as the worker sends them) decodes into its request or
// reply type and encodes back to the same bytes, through JSONDecoder (the client) and through
// JSONSerialization and `JSONValue` (the worker); and every JSON example in Protocol.md decodes
// and encodes back to the same JSON. A field renamed, added or dropped on one side fails here.
import Foundation
import Testing
import WorkerAPI

/// The JSON of a line as JSONSerialization reads it, as a tree (numbers compared by value).
func tree(_ bytes: some Collection<UInt8>) throws -> JSONValue {
    let object = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
    return try #require(JSONValue(jsonObject: object))
}

/// Whether two trees hold the same JSON: objects by key, numbers by value.
func sameJSON(_ a: JSONValue, _ b: JSONValue) -> Bool {
    switch (a, b) {
    case let (.object(x), .object(y)): return x.count == y.count && x.allSatisfy { k, v in y[k].map { sameJSON(v, $0) } ?? false }
    case let (.array(x), .array(y)): return x.count == y.count && zip(x, y).allSatisfy { sameJSON($0, $1) }
    case let (.integer(i), .number(x)), let (.number(x), .integer(i)): return Double(i) == x
    default: return a == b
    }
}

/// What a line is, by its keys: a reply has `ok`, a request `op` without it.
func isReply(_ value: JSONValue) -> Bool { if case .object(let o) = value { return o["ok"] != nil } else { return false } }

/// The request of a line as the worker reads it (JSONSerialization, `JSONValue`, its decoder)
/// and as JSONDecoder reads it; both must agree.
func decodeRequest(_ line: some Collection<UInt8>) throws -> (request: Request, id: JSONValue?) {
    let value = try tree(line)
    let byWorker = try value.decode(Request.self)
    let byClient = try JSONDecoder().decode(Request.self, from: Data(line))
    #expect(byWorker == byClient, "\(String(decoding: Array(line), as: UTF8.self))")
    guard case .object(let o) = value else { throw RequestError("bad_json", "not an object") }
    return (byWorker, o["id"])
}

struct WireExamplesTests {
    static let fixture: [String] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/wire-lines.jsonl")
        let text = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init)
    }()

    @Test func theFixtureCoversEveryOpAndTheErrorReply() throws {
        #expect(Self.fixture.count >= 30, "the fixture was not read")
        var requestOps = Set<Op>(), replyOps = Set<Op>(), errors = 0
        for line in Self.fixture {
            if isReply(try tree(Array(line.utf8))) {
                let reply = try JSONDecoder().decode(Reply<ReplyBody>.self, from: Data(line.utf8))
                if let op = reply.op { replyOps.insert(op) } else { errors += 1 }
            } else {
                requestOps.insert(try decodeRequest(Array(line.utf8)).request.op)
            }
        }
        #expect(requestOps == Set(Op.allCases) && replyOps == Set(Op.allCases) && errors >= 1, "\(requestOps) \(replyOps) \(errors)")
    }

    @Test(arguments: fixture)
    func aLineDecodesAndEncodesToTheSameBytes(_ line: String) throws {
        let bytes = Array(line.utf8)
        let encoded: [UInt8]
        if isReply(try tree(bytes)) {
            let byClient = try JSONDecoder().decode(Reply<ReplyBody>.self, from: Data(bytes))
            let byWorker = try tree(bytes).decode(Reply<ReplyBody>.self)
            encoded = try WireFormat.line(byClient)
            #expect(try WireFormat.line(byWorker) == encoded)
            // The reply as the client of its op reads it.
            if let op = byClient.op { try checkTypedReply(op, bytes) }
        } else {
            let (request, id) = try decodeRequest(bytes)
            encoded = try WireFormat.line(RequestLine(request, id: id))
        }
        #expect(String(decoding: encoded.dropLast(), as: UTF8.self) == line)
        #expect(encoded.last == 0x0A)
    }

    /// Decodes `bytes` as `Reply<R.Reply>` for the request type of `op`, as `WorkerClient.send` does.
    func checkTypedReply(_ op: Op, _ bytes: [UInt8]) throws {
        func check<R: WorkerRequest>(_: R.Type) throws {
            let reply = try WireFormat.decode(Reply<R.Reply>.self, from: bytes)
            #expect(reply.op == op && reply.ok)
            #expect(sameJSON(try tree(WireFormat.line(reply).dropLast()), try tree(bytes)))
        }
        switch op {
        case .ask: try check(AskRequest.self)
        case .retrieve: try check(RetrieveRequest.self)
        case .add: try check(AddRequest.self)
        case .retract: try check(RetractRequest.self)
        case .stats: try check(StatsRequest.self)
        case .health: try check(HealthRequest.self)
        case .metrics: try check(MetricsRequest.self)
        }
    }

    /// Protocol.md beside the worker's sources.
    static let protocolText: String = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/Worker/Protocol.md")
        return (try? String(contentsOf: url, encoding: .utf8)) ?? ""
    }()

    /// Every JSON object in the text that starts with `{"op"` or `{"ok"` and parses (examples
    /// with `...` in them do not, and are skipped).
    static let documentedExamples: [String] = {
        let text = Array(protocolText.utf8)
        var found: [String] = []
        var i = 0
        while i < text.count {
            guard text[i] == UInt8(ascii: "{"), text[i...].starts(with: Array(#"{"op""#.utf8)) || text[i...].starts(with: Array(#"{"ok""#.utf8)) else {
                i += 1
                continue
            }
            // The balanced object from i, skipping braces inside strings.
            var depth = 0, inString = false, escaped = false, end: Int?
            for j in i..<text.count {
                let c = text[j]
                if inString {
                    if escaped { escaped = false } else if c == UInt8(ascii: "\\") { escaped = true } else if c == UInt8(ascii: "\"") { inString = false }
                    continue
                }
                if c == UInt8(ascii: "\"") { inString = true }
                else if c == UInt8(ascii: "{") { depth += 1 }
                else if c == UInt8(ascii: "}") { depth -= 1; if depth == 0 { end = j; break } }
            }
            guard let end else { break }
            let candidate = Array(text[i...end])
            if (try? JSONSerialization.jsonObject(with: Data(candidate))) != nil {
                found.append(String(decoding: candidate, as: UTF8.self))
            }
            i = end + 1
        }
        return found
    }()

    @Test func protocolMDHasAnExampleOfEveryRequest() throws {
        var ops = Set<Op>(), replies = 0
        for example in Self.documentedExamples {
            if isReply(try tree(Array(example.utf8))) { replies += 1 } else { ops.insert(try decodeRequest(Array(example.utf8)).request.op) }
        }
        #expect(ops == Set(Op.allCases), "\(ops)")
        #expect(replies >= 1, "the ask reply example")
    }

    @Test(arguments: documentedExamples)
    func anExampleInProtocolMDDecodesAndEncodesToTheSameJSON(_ example: String) throws {
        let bytes = Array(example.utf8)
        let original = try tree(bytes)
        let encoded: [UInt8]
        if isReply(original) {
            encoded = try WireFormat.line(try JSONDecoder().decode(Reply<ReplyBody>.self, from: Data(bytes)))
        } else {
            let (request, id) = try decodeRequest(bytes)
            encoded = try WireFormat.line(RequestLine(request, id: id))
        }
        #expect(sameJSON(try tree(encoded.dropLast()), original), "\(example)\n\(String(decoding: encoded, as: UTF8.self))")
    }
}
