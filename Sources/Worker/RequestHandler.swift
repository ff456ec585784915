// The socket protocol (Protocol.md): one JSON object per line in, one per line out. This
// file turns a request line into a reply object; `SocketServer` moves the bytes. Every
// failure becomes {"ok": false, "error": {"code", "message"}} with a stable code; nothing
// a client sends is used as a path or executed, and no input can crash the worker.
import Foundation
import Posix
import Recipe
import Storage

/// What answers questions: the query encoder and the LLM (implemented where the models are
/// loaded, `recipe serve`). The LLM may serialize callers; `shouldStop` is polled per token.
public protocol AnswerEngine: AnyObject, Sendable {
    /// The editor checkpoint behind the answers and the repository's rows: its file, or
    /// `untrained(seed N)`; reported by `stats`.
    var editor: String { get }
    var similarityScale: Float { get }
    /// The editor's subject rule (`SubjectRule`), applied to every search's candidates unless
    /// the worker config's `subjectWeight` replaces it.
    var subjectRule: SubjectRule { get }
    /// The token the editor puts in front of its prompts (nil: none); `answer` adds it.
    var leadingToken: Int? { get }
    /// Query keys [N, R] of N texts (the editor's query head).
    func queryKeys(_ texts: [String]) throws -> [Float]
    /// The question's tokens as the LLM reads it: as typed, or as a user turn of the chat
    /// template (`AnswerGenerator.tokens(of:chat:)`); their count is what it costs.
    func questionTokens(_ question: String, chat: Bool) throws -> [Int]
    /// The greedy answer to `question` (its tokens) with `injection` in front, as
    /// `AnswerGenerator.answer` gives it: `stop` strings end it, `handOff` hands it to the
    /// unedited model once the prompt has stated the fact. `shouldStop` is asked before the
    /// prefill and after every token; when it says stop, the text so far returns.
    func answer(_ question: [Int], injection: Injection, maxTokens: Int, stop: [String], handOff: Bool,
                shouldStop: @escaping @Sendable () -> Bool) throws -> GeneratedAnswer
    /// What prompt refinement has done at ingestion (nil: it is off).
    var refinementCounts: PromptRefiner.Counts? { get }
    /// Answers generated together now and asks waiting to join them (nil: not batched).
    var batchCounts: BatchCounts? { get }
    /// Computes and keeps the keys and values of committed facts' continuous prompts, so
    /// that a first question about one skips the prompt's rows of the prefill; returns how
    /// many were computed (0 when all were kept already or nothing keeps them). Called by
    /// `PromptWarmer` with a few prompts at a time.
    func prepare(prompts: [[Float]]) throws -> Int
    /// What the prompt states on disk hold and did (nil: none are kept).
    var promptStateCounts: PromptStateStore.Counts? { get }
    /// Facts whose prompt states fit on disk (0: none are kept).
    var promptStateCapacity: Int { get }
}

extension AnswerEngine {
    public var refinementCounts: PromptRefiner.Counts? { nil }
    public func prepare(prompts: [[Float]]) throws -> Int { 0 }
    public var promptStateCounts: PromptStateStore.Counts? { nil }
    public var promptStateCapacity: Int { 0 }
    public var batchCounts: BatchCounts? { nil }
}

/// A request's failure, sent as {"ok": false, "error": {"code", "message", ...}}; the
/// optional parts (Protocol.md, "Error codes") go into the error object when set.
public struct RequestError: Error, Sendable {
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

    public static func missing(_ field: String) -> RequestError { RequestError("missing_field", "'\(field)' is required", field: field) }
    public static func invalid(_ field: String, _ why: String) -> RequestError { RequestError("invalid_field", "'\(field)' \(why)", field: field) }

    /// The reply's `error` object.
    var json: [String: Any] {
        var e: [String: Any] = ["code": code, "message": message]
        if let field { e["field"] = field }
        if let expected { e["expected"] = expected }
        if let tokens { e["tokens"] = tokens }
        if let limit { e["limit"] = limit }
        return e
    }
}

public final class RequestHandler: @unchecked Sendable {
    public let repository: Repository
    public let engine: AnswerEngine
    public let state: WorkerState
    let group: GroupCommit

    public init(repository: Repository, engine: AnswerEngine, state: WorkerState) {
        self.repository = repository
        group = GroupCommit(repository: repository)
        self.engine = engine
        self.state = state
    }

    /// An ask whose question has more tokens than this is unusual (questions are ~10-30):
    /// after it the heap's free pages, where its prefill's smaller buffers were, go back to
    /// the system instead of staying in glibc's free lists (`ProcessMemory`).
    static let trimAfterTokens = 256

    /// The reply to one request line (without its newline). `clientGone` tells whether the
    /// client can still read the reply; a generation stops at the next token once it cannot.
    public func handle(_ line: ArraySlice<UInt8>, clientGone: @escaping @Sendable () -> Bool = { false }) -> [String: Any] {
        var id: Any? = nil
        var op = "invalid"
        do {
            let object: Any
            do { object = try JSONSerialization.jsonObject(with: Data(line), options: []) } catch {
                throw RequestError("bad_json", "the request is not valid JSON: \(FactParser.describe(error))")
            }
            guard let request = object as? [String: Any] else {
                throw RequestError("bad_json", "the request must be a JSON object, got \(FactParser.kind(of: object))")
            }
            id = request["id"]
            guard let s = try string(request, "op") else { throw RequestError.missing("op") }
            op = s
            var reply: [String: Any]
            switch s {
            case "ask": reply = try ask(request, clientGone: clientGone)
            case "retrieve": reply = try retrieve(request)
            case "add": reply = try add(request)
            case "retract": reply = try retract(request)
            case "stats": reply = stats()
            case "health": reply = health()
            case "metrics": reply = ["metrics": metricsText()]
            default:
                op = "unknown"
                throw RequestError("unknown_op", "unknown op '\(s.prefix(64))' (ask, retrieve, add, retract, stats, health, metrics)")
            }
            state.metrics.request(op)
            reply["ok"] = true
            reply["op"] = s
            if let id { reply["id"] = id }
            return reply
        } catch {
            state.metrics.request(op)
            let e = (error as? RequestError) ?? RequestError("internal", "\(error)")
            if e.code == "internal" || e.code == "storage" { state.log.error("request_failed", ["op": op, "error": e.message]) }
            return errorReply(e, id: id)
        }
    }

    public func errorReply(_ e: RequestError, id: Any? = nil) -> [String: Any] {
        state.metrics.error(e.code)
        var r: [String: Any] = ["ok": false, "error": e.json]
        if let id { r["id"] = id }
        return r
    }

    // MARK: ask / retrieve

    func question(_ r: [String: Any]) throws -> String {
        guard let s = try string(r, "question") else { throw RequestError.missing("question") }
        guard !s.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw RequestError.invalid("question", "must not be empty") }
        let limit = state.config.limits.maxFactBytes * 4
        guard s.utf8.count <= limit else { throw RequestError("too_large", "'question' is longer than \(limit) bytes", field: "question", limit: limit) }
        return s
    }

    func factJSON(_ f: Fact) -> [String: Any] {
        var o: [String: Any] = ["id": f.id, "statement": f.statement]
        if let p = f.prompt { o["prompt"] = p }
        if let t = f.target { o["target"] = t }
        if let s = f.subject { o["subject"] = s }
        return o
    }

    /// The best `k` facts for `question` and those that beat the sentinel, as `Retriever`
    /// decides (the decision `recipe eval` measures), with the editor's subject rule unless
    /// the config's `subjectWeight` replaces it, and the config's question view.
    func search(_ question: String, k: Int) throws -> (snapshot: RepositorySnapshot, result: SearchResult, byQuestion: Bool) {
        let snapshot = repository.snapshot()
        let rule = state.config.subjectWeight.map { SubjectRule(weight: $0) } ?? engine.subjectRule
        let engine = self.engine
        let retriever = Retriever(scale: engine.similarityScale, rule: rule, questionView: state.config.questionView) {
            try engine.queryKeys($0)
        }
        let found = try retriever.retrieve([question], in: snapshot, k: k)[0]
        return (snapshot, found.result, found.byQuestion)
    }

    func ask(_ r: [String: Any], clientGone: @escaping @Sendable () -> Bool) throws -> [String: Any] {
        let start = DispatchTime.now().uptimeNanoseconds
        let q = try question(r)
        let limits = state.config.limits
        let maxTokens = try integer(r, "max_tokens", default: limits.defaultGenerationTokens, range: 1...limits.maxGenerationTokens)
        let methodName = try string(r, "method") ?? "recipe"
        guard let method = EditMethod(rawValue: methodName), method != .oracle else {
            throw RequestError.invalid("method", "must be one of recipe, none, incontext, recipe+text")
        }
        let chat = try flag(r, "chat")
        let handOff = try optionalFlag(r, "hand_off") ?? state.config.handOff
        let stop = try stopStrings(r)
        // The prefill's time and memory grow with the question's length (attention with its
        // square): one long question would hold the LLM, which every ask shares, for minutes.
        let tokens = try engine.questionTokens(q, chat: chat)
        guard !tokens.isEmpty else { throw RequestError.invalid("question", "has no tokens") }
        let questionTokens = tokens.count
        guard questionTokens <= limits.maxQuestionTokens else {
            throw RequestError("too_large", "'question' has \(questionTokens) tokens; at most \(limits.maxQuestionTokens) are answered "
                               + "(limits.maxQuestionTokens)", field: "question", tokens: questionTokens, limit: limits.maxQuestionTokens)
        }
        // `none` is the unedited model: no query encoding and no search, so that its
        // latency is the baseline the other methods are measured against.
        let snapshot: RepositorySnapshot, result: SearchResult?, byQuestion: Bool
        if method == .none {
            (snapshot, result, byQuestion) = (repository.snapshot(), nil, false)
        } else {
            (snapshot, result, byQuestion) = try search(q, k: 1)
        }
        let used = result?.hits.first
        let injection = Injection(method, fact: used.map { (snapshot.prompt(row: $0.row), $0.fact.statement) })
        let retrieved = DispatchTime.now().uptimeNanoseconds
        let state = self.state
        let generated: GeneratedAnswer
        do {
            defer { if questionTokens > Self.trimAfterTokens { ProcessMemory.returnFreePages() } }
            generated = try engine.answer(tokens, injection: injection, maxTokens: maxTokens, stop: stop, handOff: handOff,
                                          shouldStop: { state.stopping || clientGone() })
        }
        let text = generated.text, answerTokens = generated.tokens.count
        let end = DispatchTime.now().uptimeNanoseconds
        if clientGone() {
            // Nobody reads the reply: the generation stopped at the token where it noticed.
            state.metrics.askAbandoned(tokens: answerTokens)
            state.log.info("ask_abandoned", ["tokens": answerTokens, "max_tokens": maxTokens, "question_tokens": questionTokens])
            throw RequestError("client_gone", "the client hung up; the answer was abandoned after \(answerTokens) tokens")
        }
        state.metrics.asked(seconds: Double(end - start) / 1e9, tokens: answerTokens)
        let best = result?.candidates.first
        return [
            "answer": text, "tokens": answerTokens, "method": method.rawValue, "chat": chat, "hand_off": handOff,
            "stop_reason": generated.stopReason.rawValue,
            "fact": used.map { factJSON($0.fact) } ?? NSNull(),
            "score": (used ?? best).map { Double($0.score) } ?? NSNull(),
            "sentinel_score": result.map { Double($0.sentinelScore) } ?? NSNull(),
            "view": result == nil ? NSNull() : byQuestion ? "question" : "whole",
            "time_step": snapshot.timeStep,
            "retrieval_ms": Double(retrieved - start) / 1e6,
            "latency_ms": Double(end - start) / 1e6,
        ]
    }

    func retrieve(_ r: [String: Any]) throws -> [String: Any] {
        let start = DispatchTime.now().uptimeNanoseconds
        let q = try question(r)
        let k = try integer(r, "k", default: 1, range: 1...64)
        let includePrompt = try flag(r, "include_prompt")
        let (snapshot, result, byQuestion) = try search(q, k: k)
        var reply: [String: Any] = [
            "view": byQuestion ? "question" : "whole",
            "fact": result.hits.first.map { factJSON($0.fact) } ?? NSNull(),
            "score": result.hits.first.map { Double($0.score) } ?? NSNull(),
            "sentinel_score": Double(result.sentinelScore),
            "candidates": result.candidates.map { h -> [String: Any] in
                var o = factJSON(h.fact)
                o["score"] = Double(h.score)
                o["above_sentinel"] = h.score > result.sentinelScore
                if let named = h.subjectNamed { o["subject_named"] = named }
                return o
            },
            "time_step": snapshot.timeStep,
        ]
        if includePrompt {
            if let h = result.hits.first {
                reply["prompt"] = ["rows": snapshot.promptRows, "width": snapshot.promptWidth,
                                   "values": snapshot.prompt(row: h.row).map { Double($0) },
                                   "leading_token": engine.leadingToken ?? NSNull()] as [String: Any]
            } else {
                reply["prompt"] = NSNull()
            }
        }
        reply["latency_ms"] = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        return reply
    }

    // MARK: add / retract

    static let parser = FactParser(sourceKind: .socket)

    /// The fields of a fact object (`FactParser` reads them; their types are checked here,
    /// where the request field can be named).
    static let factFields = ["op", "statement", "prompt", "target", "subject", "id", "source"]

    func operation(_ object: Any, field: String) throws -> FactOperation {
        guard JSONKind(of: object) == .object, let o = object as? [String: Any] else {
            throw RequestError.wrongType(field, expected: .object, found: object, note: " (a fact)")
        }
        var limited = o
        let max = state.config.limits.maxFactBytes
        for key in Self.factFields {
            guard let s = try string(o, key, in: field) else { continue }
            if key == "source" { limited[key] = String(s.prefix(128)); continue }
            if s.utf8.count > max { throw RequestError("too_large", "'\(field).\(key)' is longer than \(max) bytes", field: "\(field).\(key)", limit: max) }
        }
        switch Self.parser.operation(from: limited, file: "socket", line: 0) {
        case .success(let op): return op
        case .failure(let reason): throw RequestError("invalid_fact", "\(field): \(reason)")
        }
    }

    func commit(_ ops: [FactOperation]) throws -> [String: Any] {
        guard !state.stopping else { throw RequestError("shutting_down", "the worker is shutting down") }
        let report: (outcomes: [FactOutcome], timeStep: UInt64, stepped: Bool)
        do { report = try group.commit(ops) } catch {
            // A commit abandoned for shutdown (a long prompt refinement) stored nothing.
            if state.stopping { throw RequestError("shutting_down", "the worker is shutting down: not stored") }
            state.metrics.commitFailed()
            throw RequestError("storage", "not stored: \(error)")
        }
        let outcomes = report.outcomes.map(Self.outcomeJSON)
        let counts = OutcomeSummary(report.outcomes)
        state.metrics.ingested(stored: counts.stored, duplicates: counts.duplicates, rejected: 0, steps: 0)
        var reply: [String: Any] = ["outcomes": outcomes, "time_step": report.timeStep, "durable": true]
        if outcomes.count == 1 { for (k, v) in outcomes[0] { reply[k] = v } }
        return reply
    }

    static func outcomeJSON(_ o: FactOutcome) -> [String: Any] {
        switch o {
        case let .added(id, _): return ["status": "added", "fact_id": id]
        case let .superseded(id, _, replaced): return ["status": "superseded", "fact_id": id, "replaced": replaced]
        case let .duplicate(existing): return ["status": "duplicate", "fact_id": existing]
        case let .retracted(id): return ["status": "retracted", "fact_id": id]
        case let .notFound(what): return ["status": "not_found", "target": what]
        case let .invalid(why): return ["status": "invalid", "reason": why]
        }
    }

    func add(_ r: [String: Any]) throws -> [String: Any] {
        var ops: [FactOperation] = []
        if let f = value(r, "fact") { ops.append(try operation(f, field: "fact")) }
        if let fs = value(r, "facts") {
            guard JSONKind(of: fs) == .array, let list = fs as? [Any] else { throw RequestError.wrongType("facts", expected: .array, found: fs, note: " of facts") }
            for (i, f) in list.enumerated() { ops.append(try operation(f, field: "facts[\(i)]")) }
        }
        guard !ops.isEmpty else { throw RequestError.missing("fact") }
        for op in ops { if case .add = op {} else { throw RequestError.invalid("fact", "must be a fact to add (use op retract to remove one)") } }
        return try commit(ops)
    }

    func retract(_ r: [String: Any]) throws -> [String: Any] {
        if let s = try string(r, "fact_id") {
            guard !s.trimmingCharacters(in: .whitespaces).isEmpty else { throw RequestError.invalid("fact_id", "must not be empty") }
            return try commit([.retractID(s, source: FactSource(kind: .socket, name: "socket"))])
        }
        if let s = try string(r, "statement") {
            guard !FactText.normalize(s).isEmpty else { throw RequestError.invalid("statement", "must not be empty") }
            return try commit([.retractStatement(s, source: FactSource(kind: .socket, name: "socket"))])
        }
        throw RequestError.missing("fact_id")
    }

    // MARK: stats / health / metrics

    func stats() -> [String: Any] {
        let s = repository.stats
        return [
            "editor": engine.editor,
            "repository": ["live_facts": s.liveFacts, "rows": s.rows, "dead_rows": s.deadRows, "time_step": s.timeStep,
                           "generation": s.generation, "log_records": s.logRecords, "log_bytes": s.logBytes,
                           "key_dimension": s.keyDimension, "prompt_rows": s.promptRows, "prompt_width": s.promptWidth,
                           "fingerprint": s.fingerprint,
                           "content_fingerprint": String(format: "%08x", repository.contentFingerprint)] as [String: Any],
            "worker": state.metrics.summary(),
            "jetstream": state.jetstream.summary() ?? NSNull(),
            "refinement": engine.refinementCounts.map { ["facts": $0.facts, "steps": $0.steps, "unchanged": $0.unchanged] } ?? NSNull(),
            "batch": engine.batchCounts.map {
                ["running": $0.running, "waiting": $0.waiting, "largest": $0.largest, "max": $0.max, "steps": $0.steps]
            } ?? NSNull(),
            "prompt_states": engine.promptStateCounts.map {
                ["entries": $0.entries, "capacity": engine.promptStateCapacity, "hits": $0.hits, "misses": $0.misses,
                 "stored": $0.stored, "errors": $0.errors, "skipped_for_space": $0.skippedForSpace]
            } ?? NSNull(),
        ]
    }

    func health() -> [String: Any] {
        let snap = repository.snapshot()
        return ["status": state.stopping ? "stopping" : "ok", "time_step": snap.timeStep, "live_facts": snap.liveCount,
                "uptime_seconds": Date().timeIntervalSince(state.metrics.started)]
    }

    public func metricsText() -> String {
        let snap = repository.snapshot()
        let refined = engine.refinementCounts, states = engine.promptStateCounts
        var gauges: [(name: String, help: String, value: Double)] = [
            ("recipe_live_facts", "Live facts in the repository.", Double(snap.liveCount)),
            ("recipe_repository_rows", "Matrix rows in use, sentinel included.", Double(snap.rowCount)),
            ("recipe_time_step", "Last committed time step.", Double(snap.timeStep)),
        ]
        var counters: [(name: String, help: String, value: Int)] = []
        if let r = refined {
            counters += [("recipe_refined_facts_total", "Facts whose prompt was refined at ingestion.", r.facts),
                         ("recipe_refinement_steps_total", "Adam steps of prompt refinement.", r.steps)]
        }
        if let s = states {
            gauges.append(("recipe_prompt_states", "Prompts whose keys and values are kept on disk.", Double(s.entries)))
            counters += [("recipe_prompt_state_hits_total", "Asks that read their prompt's keys and values from disk.", s.hits),
                         ("recipe_prompt_state_misses_total", "Asks that found them neither in memory nor on disk.", s.misses),
                         ("recipe_prompt_states_stored_total", "Prompts whose keys and values were written to disk.", s.stored),
                         ("recipe_prompt_state_errors_total", "Damaged prompt states found, or failed reads and writes.", s.errors),
                         ("recipe_prompt_states_skipped_for_space_total", "Prompt states not kept to leave the disk's reserve free.",
                          s.skippedForSpace)]
        }
        if let b = engine.batchCounts {
            gauges += [("recipe_batch_answers", "Answers being generated together now.", Double(b.running)),
                       ("recipe_batch_waiting", "Asks waiting to join the batch.", Double(b.waiting))]
            counters.append(("recipe_batch_steps_total", "Decode steps of the batch (one pass over the weights each).", b.steps))
        }
        let stream = state.jetstream.prometheus()
        return state.metrics.prometheus(gauges: gauges + stream.gauges, counters: counters + stream.counters)
    }
}
