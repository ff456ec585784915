// `RequestHandler` without models: a hashing encoder for the repository and a scripted
// engine that "generates" one token per step, asking `shouldStop` before the prefill and
// after every token as the real one does. Covers what the handler decides on its own: the
// JSON type of every request field, the cap on a question's tokens, and an ask whose client
// hung up.
import Foundation
import Posix
import Recipe
import Storage
import TestSupport
import Testing
import Worker
import WorkerAPI

/// An `AnswerEngine` whose question has one token per word and whose answer is "tok" per
/// step; counts calls and the steps it took.
final class ScriptedEngine: AnswerEngine, @unchecked Sendable {
    let editor = "scripted"
    let similarityScale: Float = 1
    let subjectRule = SubjectRule.off
    let leadingToken: Int? = nil
    private let lock = NSLock()
    private var _answers = 0
    private var _steps = 0
    var answers: Int { lock.withLock { _answers } }
    var steps: Int { lock.withLock { _steps } }

    func queryKeys(_ texts: [String]) throws -> [Float] {
        texts.flatMap { _ in [1] + [Float](repeating: 0, count: 15) }
    }
    func questionTokens(_ question: String, chat: Bool) throws -> [Int] {
        Array(repeating: 7, count: question.split(separator: " ").count + (chat ? 4 : 0))
    }
    func answer(_ question: [Int], injection: Injection, maxTokens: Int, stop: [String], handOff: Bool,
                shouldStop: @escaping @Sendable () -> Bool) throws -> GeneratedAnswer {
        lock.withLock { _answers += 1 }
        var n = 0
        if shouldStop() { return GeneratedAnswer(text: "", tokens: [], stopReason: .cancelled) }
        while n < maxTokens {
            n += 1
            lock.withLock { _steps += 1 }
            if shouldStop() { break }
        }
        return GeneratedAnswer(text: String(repeating: " tok", count: n), tokens: Array(repeating: 1, count: n),
                               stopReason: n == maxTokens ? .length : .cancelled)
    }
}

/// A handler on a fresh repository; `configure` adjusts the config first.
private func makeHandler(_ tag: String, configure: (inout WorkerConfig) -> Void = { _ in })
    throws -> (RequestHandler, ScriptedEngine, () -> Void) {
    let dir = try Fixtures.temporaryDirectory(tag)
    var config = WorkerConfig()
    config.repository = dir.path + "/repo"
    config.limits.maxGenerationTokens = 64
    configure(&config)
    let repository = try Repository(path: config.repository, encoder: HashingFactEncoder())
    let engine = ScriptedEngine()
    let state = WorkerState(config: config, log: try WorkerLog(level: .error))
    let handler = RequestHandler(repository: repository, engine: engine, state: state)
    return (handler, engine, { try? repository.close(); try? FileManager.default.removeItem(at: dir) })
}

/// The reply to `json` as the client reads it: the line the worker sends, as an object. The
/// line must also decode as the reply of the request's op, as `WorkerClient.send` reads it.
private func reply(_ h: RequestHandler, _ json: String, clientGone: @escaping @Sendable () -> Bool = { false }) -> [String: Any] {
    let line: [UInt8]
    do { line = try WireFormat.line(h.handle(Array(json.utf8)[...], clientGone: clientGone)) } catch {
        Issue.record("\(json): the reply does not encode: \(error)")
        return [:]
    }
    do { _ = try WireFormat.decode(Reply<ReplyBody>.self, from: line.dropLast()) } catch {
        Issue.record("\(json): the client cannot read the reply: \(error)")
    }
    return (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any] ?? [:]
}

@Suite struct RequestHandlerTests {
    /// (request, the field named, the JSON type it must have): JSONSerialization gives
    /// `true` as 1 and 1 as true; neither may pass as the other.
    static let wrongTypes: [(String, String, String)] = [
        (#"{"op":"ask","question":"Hello there","max_tokens":true}"#, "max_tokens", "integer"),
        (#"{"op":"ask","question":"Hello there","max_tokens":false}"#, "max_tokens", "integer"),
        (#"{"op":"ask","question":"Hello there","max_tokens":2.5}"#, "max_tokens", "integer"),
        (#"{"op":"ask","question":"Hello there","max_tokens":"2"}"#, "max_tokens", "integer"),
        (#"{"op":"ask","question":"Hello there","method":true}"#, "method", "string"),
        (#"{"op":"ask","question":"Hello there","chat":1}"#, "chat", "boolean"),
        (#"{"op":"ask","question":"Hello there","hand_off":"no"}"#, "hand_off", "boolean"),
        (#"{"op":"ask","question":"Hello there","stop":3}"#, "stop", "array"),
        (#"{"op":"ask","question":"Hello there","stop":[".",1]}"#, "stop[1]", "string"),
        (#"{"op":"ask","question":7}"#, "question", "string"),
        (#"{"op":"ask","question":true}"#, "question", "string"),
        (#"{"op":"retrieve","question":"Hello there","k":true}"#, "k", "integer"),
        (#"{"op":"retrieve","question":"Hello there","k":[1]}"#, "k", "integer"),
        (#"{"op":"retrieve","question":"Hello there","include_prompt":1}"#, "include_prompt", "boolean"),
        (#"{"op":"retrieve","question":"Hello there","include_prompt":0}"#, "include_prompt", "boolean"),
        (#"{"op":"retrieve","question":"Hello there","include_prompt":"yes"}"#, "include_prompt", "boolean"),
        (#"{"op":"retrieve","question":["Hello"]}"#, "question", "string"),
        (#"{"op":true}"#, "op", "string"),
        (#"{"op":1}"#, "op", "string"),
        (#"{"op":"add","fact":"The sky is green"}"#, "fact", "object"),
        (#"{"op":"add","fact":true}"#, "fact", "object"),
        (#"{"op":"add","facts":{"statement":"The sky is green"}}"#, "facts", "array"),
        (#"{"op":"add","facts":[{"statement":"The sky is green"},true]}"#, "facts[1]", "object"),
        (#"{"op":"add","fact":{"statement":true}}"#, "fact.statement", "string"),
        (#"{"op":"add","fact":{"statement":"The sky is green","id":5}}"#, "fact.id", "string"),
        (#"{"op":"add","fact":{"statement":"The sky is green","source":7}}"#, "fact.source", "string"),
        (#"{"op":"add","fact":{"statement":"The sky is green","subject":false}}"#, "fact.subject", "string"),
        (#"{"op":"add","fact":{"prompt":"The sky is","target":1}}"#, "fact.target", "string"),
        (#"{"op":"add","fact":{"prompt":2,"target":"green"}}"#, "fact.prompt", "string"),
        (#"{"op":"add","facts":[{"statement":"The sky is green","op":true}]}"#, "facts[0].op", "string"),
        (#"{"op":"retract","fact_id":1}"#, "fact_id", "string"),
        (#"{"op":"retract","fact_id":true}"#, "fact_id", "string"),
        (#"{"op":"retract","statement":false}"#, "statement", "string"),
    ]

    @Test(arguments: wrongTypes)
    func aFieldOfTheWrongJSONTypeIsRefusedByName(_ request: String, _ field: String, _ expected: String) throws {
        let (handler, engine, cleanup) = try makeHandler("types")
        defer { cleanup() }
        let r = reply(handler, request)
        let error = r["error"] as? [String: Any] ?? [:]
        #expect(r["ok"] as? Bool == false && error["code"] as? String == "invalid_field", "\(request): \(r)")
        #expect(error["field"] as? String == field && error["expected"] as? String == expected, "\(request): \(r)")
        let message = error["message"] as? String ?? ""
        #expect(message.contains("'\(field)'") && message.contains(expected), "\(request): \(message)")
        #expect(engine.answers == 0, "nothing was generated for \(request)")
        #expect(handler.repository.liveCount == 0, "nothing was stored for \(request)")
    }

    @Test func integralNumbersNullsAndRightTypesAreAccepted() throws {
        let (handler, engine, cleanup) = try makeHandler("types-ok")
        defer { cleanup() }
        let ask = reply(handler, #"{"op":"ask","question":"Hello there","max_tokens":3.0,"method":null}"#)
        #expect(ask["ok"] as? Bool == true && ask["tokens"] as? Int == 3, "\(ask)")
        let defaulted = reply(handler, #"{"op":"ask","question":"Hello there","max_tokens":null}"#)
        #expect(defaulted["tokens"] as? Int == WorkerConfig().limits.defaultGenerationTokens, "\(defaulted)")
        #expect(defaulted["stop_reason"] as? String == "length" && defaulted["chat"] as? Bool == false
                 && defaulted["hand_off"] as? Bool == WorkerConfig().handOff, "\(defaulted)")
        let options = reply(handler, #"{"op":"ask","question":"Hello there","stop":"\n","chat":true,"hand_off":false,"max_tokens":2}"#)
        #expect(options["ok"] as? Bool == true && options["chat"] as? Bool == true && options["hand_off"] as? Bool == false, "\(options)")
        #expect(reply(handler, #"{"op":"ask","question":"Hello there","stop":["a","b","c","d","e","f","g","h","i"]}"#).errorCode == "invalid_field")
        #expect(reply(handler, #"{"op":"ask","question":"Hello there","stop":[""]}"#).errorCode == "invalid_field")
        let added = reply(handler, #"{"op":"add","fact":{"statement":"The sky is green","id":"sky","source":"test","subject":null}}"#)
        #expect(added["ok"] as? Bool == true && added["status"] as? String == "added", "\(added)")
        let retrieved = reply(handler, #"{"op":"retrieve","question":"The sky is","k":2,"include_prompt":false}"#)
        #expect(retrieved["ok"] as? Bool == true && retrieved["prompt"] == nil, "\(retrieved)")
        let withPrompt = reply(handler, #"{"op":"retrieve","question":"The sky is","include_prompt":true}"#)
        #expect(withPrompt["ok"] as? Bool == true && withPrompt["prompt"] != nil, "\(withPrompt)")
        #expect(reply(handler, #"{"op":"retract","fact_id":"sky"}"#)["status"] as? String == "retracted")
        #expect(engine.answers == 3)
        // Out of range is still invalid_field, with the range in the message.
        let big = reply(handler, #"{"op":"ask","question":"Hello there","max_tokens":100000}"#)
        #expect((big["error"] as? [String: Any])?["field"] as? String == "max_tokens", "\(big)")
    }

    @Test func aQuestionOverTheTokenLimitIsRefusedWithItsCounts() throws {
        let (handler, engine, cleanup) = try makeHandler("question-tokens") { $0.limits.maxQuestionTokens = 8 }
        defer { cleanup() }
        let long = (0..<20).map { "word\($0)" }.joined(separator: " ")
        let r = reply(handler, #"{"op":"ask","question":"\#(long)"}"#)
        let error = r["error"] as? [String: Any] ?? [:]
        #expect(error["code"] as? String == "too_large" && error["field"] as? String == "question", "\(r)")
        #expect(error["tokens"] as? Int == 20 && error["limit"] as? Int == 8, "\(r)")
        #expect((error["message"] as? String ?? "").contains("limits.maxQuestionTokens"), "\(r)")
        #expect(engine.answers == 0, "the LLM was not asked")
        let short = reply(handler, #"{"op":"ask","question":"one two three four five six seven eight"}"#)
        #expect(short["ok"] as? Bool == true, "a question of exactly the limit is answered: \(short)")
    }

    @Test func anAskWhoseClientHungUpStopsGenerating() throws {
        let (handler, engine, cleanup) = try makeHandler("hang-up")
        defer { cleanup() }
        // The client goes away after the engine's third look.
        let looks = Counter()
        let r = reply(handler, #"{"op":"ask","question":"Count to a thousand","max_tokens":64}"#, clientGone: { looks.next() >= 3 })
        #expect((r["error"] as? [String: Any])?["code"] as? String == "client_gone", "\(r)")
        #expect(engine.steps < 64, "generation went on for \(engine.steps) tokens")
        let worker = handler.state.metrics.summary()
        #expect(worker.asksAbandoned == 1, "\(worker)")
        // Gone before the prefill: nothing is generated at all.
        let before = engine.steps
        let gone = reply(handler, #"{"op":"ask","question":"Count to a thousand","max_tokens":64}"#, clientGone: { true })
        #expect((gone["error"] as? [String: Any])?["code"] as? String == "client_gone" && engine.steps == before, "\(gone)")
    }
}

extension RequestHandlerTests {
    /// The reply to `request` as a client of its op reads it (the line the worker sends,
    /// decoded as `Reply<R.Reply>`, as `WorkerClient.send` does).
    func typed<R: WorkerRequest>(_ h: RequestHandler, _ request: R, id: JSONValue? = nil) throws -> Reply<R.Reply> {
        let line = try WireFormat.line(RequestLine(request.request, id: id))
        return try WireFormat.decode(Reply<R.Reply>.self, from: WireFormat.line(h.handle(line.dropLast())).dropLast())
    }

    @Test func everyOpsReplyReadsAsItsTypeOnTheClient() throws {
        let (handler, _, cleanup) = try makeHandler("typed")
        defer { cleanup() }
        let added = try typed(handler, AddRequest(fact: FactInput(statement: "The sky is green", id: "sky")), id: .string("a1"))
        #expect(added.id == .string("a1") && added.op == .add && added.body?.outcome == .added(factID: "sky"), "\(added)")
        let batch = try #require(try typed(handler, AddRequest(facts: [FactInput(statement: "The grass is blue"),
                                                                      FactInput(statement: "The sky is green")])).body)
        #expect(batch.outcome == nil && batch.outcomes.count == 2 && batch.outcomes[1] == .duplicate(factID: "sky"), "\(batch)")
        let retrieved = try #require(try typed(handler, RetrieveRequest(question: "The sky is green", k: 2, includePrompt: true)).body)
        #expect(retrieved.candidates.count == 2 && retrieved.fact?.id == retrieved.candidates[0].fact.id, "\(retrieved)")
        #expect(retrieved.prompt.value.map { $0.values.count == $0.rows * $0.width } ?? (retrieved.fact == nil), "\(retrieved.prompt)")
        let asked = try #require(try typed(handler, AskRequest(question: "Hello there", maxTokens: 2, method: "none")).body)
        #expect(asked.tokens == 2 && asked.answer == " tok tok" && asked.fact == nil && asked.view == nil && asked.score == nil, "\(asked)")
        let stats = try #require(try typed(handler, StatsRequest()).body)
        #expect(stats.editor == "scripted" && stats.repository.liveFacts == 2 && stats.worker.requests["add"] == 2, "\(stats)")
        #expect(stats.jetstream == nil && stats.refinement == nil && stats.batch == nil && stats.promptStates == nil)
        let health = try #require(try typed(handler, HealthRequest(), id: .null).body)
        #expect(health.status == "ok" && health.liveFacts == 2 && health.timeStep == stats.repository.timeStep, "\(health)")
        #expect(try typed(handler, HealthRequest(), id: .null).id == .null, "an id given as null is echoed as null")
        #expect(try typed(handler, MetricsRequest()).body?.metrics.contains("recipe_live_facts 2") == true)
        #expect(try typed(handler, RetractRequest(factID: "nothing")).body?.outcome == .notFound(target: "nothing"))
        #expect(try typed(handler, RetractRequest(statement: "The sky is green")).body?.outcome == .retracted(factID: "sky"))
        // An error reply reads as the worker's RequestError, with the id echoed.
        let refused = try typed(handler, AskRequest(question: "Hello there", maxTokens: 1000), id: .integer(9))
        #expect(refused.id == .integer(9) && refused.op == nil, "\(refused)")
        #expect(refused.error == RequestError("invalid_field", "'max_tokens' must be between 1 and 64", field: "max_tokens"), "\(refused)")
    }
}

/// A thread-safe count of calls.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func next() -> Int { lock.withLock { n += 1; return n } }
}
