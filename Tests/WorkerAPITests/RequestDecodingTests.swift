// Decoding requests: the worker's reader (JSONSerialization, then `JSONValue`'s decoder) and
// JSONDecoder agree on every request and on every refusal, and a refusal names the field as
// the request has it, the JSON type it must have and the type found.
import Foundation
import Testing
import WorkerAPI

/// The refusal of `line` by each reader (nil when it decodes).
func refusals(_ line: String, maxTokens: Int? = nil) throws -> (worker: RequestError?, client: RequestError?) {
    let info: [CodingUserInfoKey: Any] = maxTokens.map { [.maxGenerationTokens: $0] } ?? [:]
    func refusal(_ body: () throws -> Request) -> RequestError? {
        do { _ = try body(); return nil } catch let e as RequestError { return e } catch {
            Issue.record("\(line): not a RequestError: \(error)")
            return nil
        }
    }
    let value = try tree(Array(line.utf8))
    let decoder = JSONDecoder()
    if let maxTokens { decoder.userInfo[.maxGenerationTokens] = maxTokens }
    return (refusal { try value.decode(Request.self, userInfo: info) }, refusal { try decoder.decode(Request.self, from: Data(line.utf8)) })
}

struct RequestDecodingTests {
    /// (request, the field named, the type it must have, the type found).
    static let wrongTypes: [(String, String, String, String)] = [
        (#"{"op":"ask","question":"Hello","max_tokens":true}"#, "max_tokens", "integer", "a boolean"),
        (#"{"op":"ask","question":"Hello","max_tokens":2.5}"#, "max_tokens", "integer", "a number"),
        (#"{"op":"ask","question":"Hello","method":1}"#, "method", "string", "an integer"),
        (#"{"op":"ask","question":"Hello","chat":1}"#, "chat", "boolean", "an integer"),
        (#"{"op":"ask","question":"Hello","stop":{}}"#, "stop", "array", "an object"),
        (#"{"op":"ask","question":"Hello","stop":["a",null]}"#, "stop[1]", "string", "null"),
        (#"{"op":"ask","question":[]}"#, "question", "string", "an array"),
        (#"{"op":"retrieve","question":"Hello","k":"2"}"#, "k", "integer", "a string"),
        (#"{"op":"retrieve","question":"Hello","include_prompt":0}"#, "include_prompt", "boolean", "an integer"),
        (#"{"op":false}"#, "op", "string", "a boolean"),
        (#"{"op":"add","fact":[]}"#, "fact", "object", "an array"),
        (#"{"op":"add","facts":{}}"#, "facts", "array", "an object"),
        (#"{"op":"add","facts":[{"statement":"x"},null]}"#, "facts[1]", "object", "null"),
        (#"{"op":"add","facts":[{"statement":"x"},{"statement":"y","target":2.0}]}"#, "facts[1].target", "string", "an integer"),
        (#"{"op":"add","fact":{"statement":"x","subject":true}}"#, "fact.subject", "string", "a boolean"),
        (#"{"op":"retract","fact_id":{}}"#, "fact_id", "string", "an object"),
        (#"{"op":"retract","statement":1.5}"#, "statement", "string", "a number"),
    ]

    @Test(arguments: wrongTypes)
    func aFieldOfTheWrongTypeIsNamedWithItsTypeByBothReaders(_ line: String, _ field: String, _ expected: String, _ found: String) throws {
        let (worker, client) = try refusals(line, maxTokens: 256)
        let e = try #require(worker, "\(line) decoded")
        #expect(e == client, "\(line): the readers disagree: \(e) vs \(String(describing: client))")
        #expect(e.code == "invalid_field" && e.field == field && e.expected == expected, "\(line): \(e)")
        #expect(e.message.hasPrefix("'\(field)' must be ") && e.message.hasSuffix(", got \(found)"), "\(line): \(e.message)")
    }

    @Test func theMessagesAreThoseTheWorkerHasAlwaysSent() throws {
        let cases: [(String, String)] = [
            (#"{"op":"ask","question":"Hello","max_tokens":true}"#, "'max_tokens' must be an integer between 1 and 256, got a boolean"),
            (#"{"op":"retrieve","question":"Hello","k":[1]}"#, "'k' must be an integer between 1 and 64, got an array"),
            (#"{"op":"ask","question":"Hello","hand_off":"no"}"#, "'hand_off' must be a boolean (true or false), got a string"),
            (#"{"op":"ask","question":"Hello","stop":3}"#, "'stop' must be an array of strings (or a string), got an integer"),
            (#"{"op":"add","fact":"x"}"#, "'fact' must be an object (a fact), got a string"),
            (#"{"op":"add","facts":true}"#, "'facts' must be an array of facts, got a boolean"),
            (#"{"op":"ask"}"#, "'question' is required"),
            (#"{"op":"ask","question":null}"#, "'question' is required"),
            (#"{"id":1}"#, "'op' is required"),
            (#"{"op":"shout"}"#, "unknown op 'shout' (ask, retrieve, add, retract, stats, health, metrics)"),
        ]
        for (line, message) in cases {
            let (worker, client) = try refusals(line, maxTokens: 256)
            #expect(worker?.message == message && client?.message == message, "\(line): \(String(describing: worker)) / \(String(describing: client))")
        }
        #expect(try refusals(#"{"op":"ask"}"#).worker?.code == "missing_field")
        #expect(try refusals(#"{"op":"shout"}"#).worker?.code == "unknown_op")
    }

    @Test func integralNumbersNullsAndTheStringFormOfStopAreAccepted() throws {
        let line = #"{"op":"ask","question":"Hello","max_tokens":3.0,"method":null,"stop":"\n","chat":null,"hand_off":false}"#
        let (request, _) = try decodeRequest(Array(line.utf8))
        #expect(request == .ask(AskRequest(question: "Hello", maxTokens: 3, stop: ["\n"], handOff: false)))
        let add = #"{"op":"add","fact":null,"facts":[{"statement":"x","subject":null}]}"#
        #expect(try decodeRequest(Array(add.utf8)).request == .add(AddRequest(facts: [FactInput(statement: "x")])))
        // With `fact_id`, `statement` is not read (the worker never looked at it).
        let retract = #"{"op":"retract","fact_id":"a","statement":5}"#
        #expect(try decodeRequest(Array(retract.utf8)).request == .retract(RetractRequest(factID: "a")))
    }

    @Test func jsonValueKindsFollowTheProtocol() throws {
        let line = #"{"a":2,"b":2.0,"c":2.5,"d":true,"e":null,"f":"s","g":[],"h":{},"i":1e300,"j":9007199254740993,"k":-0}"#
        guard case .object(let o) = try tree(Array(line.utf8)) else { Issue.record("not an object"); return }
        let kinds = o.mapValues(\.kind)
        #expect(kinds == ["a": .integer, "b": .integer, "c": .number, "d": .boolean, "e": .null, "f": .string, "g": .array,
                          "h": .object, "i": .number, "j": .integer, "k": .integer], "\(kinds)")
        #expect(o["j"]?.integerValue == 9_007_199_254_740_993, "a 64-bit integer is kept exact")
        // The id echo: any JSON value comes back as it went.
        for id in [#"7"#, #""q-1""#, #"null"#, #"[1,"a",{"b":false}]"#, #"{"x":1.5}"#] {
            let bytes = Array(#"{"id":\#(id),"op":"health"}"#.utf8)
            let (request, echoed) = try decodeRequest(bytes)
            let encoded = try WireFormat.line(RequestLine(request, id: echoed))
            #expect(String(decoding: encoded.dropLast(), as: UTF8.self) == String(decoding: bytes, as: UTF8.self))
        }
    }
}
