// The socket protocol (Protocol.md): one JSON object per line in, one per line out. This
// file turns a request line into a reply object; `SocketServer` moves the bytes. Every
// failure becomes {"ok": false, "error": {"code", "message"}} with a stable code; nothing
// a client sends is used as a path or executed, and no input can crash the worker.
import Foundation
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
    /// Query key [R] of a question.
    func queryKey(_ question: String) throws -> [Float]
    /// Greedy continuation of `question` with `injection` in front.
    func answer(_ question: String, injection: Injection, maxTokens: Int, shouldStop: @escaping @Sendable () -> Bool) throws
        -> (text: String, tokens: Int)
    /// What prompt refinement has done at ingestion (nil: it is off).
    var refinementCounts: PromptRefiner.Counts? { get }
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
}

/// A request's failure, sent as {"ok": false, "error": {"code", "message"}}.
public struct RequestError: Error, Sendable {
    public let code: String
    public let message: String
    public init(_ code: String, _ message: String) { self.code = code; self.message = message }

    public static func missing(_ field: String) -> RequestError { RequestError("missing_field", "'\(field)' is required") }
    public static func invalid(_ field: String, _ why: String) -> RequestError { RequestError("invalid_field", "'\(field)' \(why)") }
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

    /// The reply to one request line (without its newline).
    public func handle(_ line: ArraySlice<UInt8>) -> [String: Any] {
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
            guard let name = request["op"] else { throw RequestError.missing("op") }
            guard let s = name as? String else { throw RequestError.invalid("op", "must be a string") }
            op = s
            var reply: [String: Any]
            switch s {
            case "ask": reply = try ask(request)
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
        var r: [String: Any] = ["ok": false, "error": ["code": e.code, "message": e.message]]
        if let id { r["id"] = id }
        return r
    }

    // MARK: ask / retrieve

    func question(_ r: [String: Any]) throws -> String {
        guard let q = r["question"] else { throw RequestError.missing("question") }
        guard let s = q as? String else { throw RequestError.invalid("question", "must be a string") }
        guard !s.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw RequestError.invalid("question", "must not be empty") }
        let limit = state.config.limits.maxFactBytes * 4
        guard s.utf8.count <= limit else { throw RequestError("too_large", "'question' is longer than \(limit) bytes") }
        return s
    }

    func integer(_ r: [String: Any], _ key: String, default d: Int, range: ClosedRange<Int>) throws -> Int {
        guard let v = r[key], !(v is NSNull) else { return d }
        guard let n = v as? NSNumber, let i = Int(exactly: n.doubleValue) else {
            throw RequestError.invalid(key, "must be an integer")
        }
        guard range.contains(i) else { throw RequestError.invalid(key, "must be between \(range.lowerBound) and \(range.upperBound)") }
        return i
    }

    func flag(_ r: [String: Any], _ key: String) throws -> Bool {
        guard let v = r[key], !(v is NSNull) else { return false }
        guard let b = v as? Bool else { throw RequestError.invalid(key, "must be true or false") }
        return b
    }

    func factJSON(_ f: Fact) -> [String: Any] {
        var o: [String: Any] = ["id": f.id, "statement": f.statement]
        if let p = f.prompt { o["prompt"] = p }
        if let t = f.target { o["target"] = t }
        if let s = f.subject { o["subject"] = s }
        return o
    }

    /// The best `k` facts for `question` and those that beat the sentinel: the dense search,
    /// then, with the subject rule on, its rescoring of the best `SubjectRule.candidates`.
    /// With the question view on and a question of several sentences (`QuestionView`), its
    /// last sentence is searched too and the result whose best fact beats the sentinel by
    /// more is kept (`byQuestion`); the subject rule reads the whole question either way.
    func search(_ question: String, k: Int) throws -> (snapshot: RepositorySnapshot, result: SearchResult, byQuestion: Bool) {
        let snapshot = repository.snapshot()
        let rule = state.config.subjectWeight.map { SubjectRule(weight: $0) } ?? engine.subjectRule
        let named = rule.isOn ? SubjectRule.Text(question) : nil
        func search(_ text: String) throws -> SearchResult {
            let key = try engine.queryKey(text)
            guard let named else { return try snapshot.search(key, k: k, scale: engine.similarityScale) }
            let found = try snapshot.search(key, k: max(k, SubjectRule.candidates), scale: engine.similarityScale)
            return found.applying(rule, query: named, k: k)
        }
        let whole = try search(question)
        guard state.config.questionView, let view = QuestionView.question(of: question) else { return (snapshot, whole, false) }
        let byView = try search(view)
        return byView.margin > whole.margin ? (snapshot, byView, true) : (snapshot, whole, false)
    }

    func ask(_ r: [String: Any]) throws -> [String: Any] {
        let start = DispatchTime.now().uptimeNanoseconds
        let q = try question(r)
        let limits = state.config.limits
        let maxTokens = try integer(r, "max_tokens", default: limits.defaultGenerationTokens, range: 1...limits.maxGenerationTokens)
        let methodName = (r["method"] as? String) ?? "recipe"
        if let m = r["method"], !(m is String) { throw RequestError.invalid("method", "must be a string") }
        guard let method = EditMethod(rawValue: methodName), method != .oracle else {
            throw RequestError.invalid("method", "must be one of recipe, none, incontext")
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
        let injection: Injection
        switch (method, used) {
        case (.recipe, let h?): injection = .prompt(snapshot.prompt(row: h.row))
        case (.incontext, let h?): injection = .text(InContextTemplate.prefix(statement: h.fact.statement))
        default: injection = .nothing
        }
        let retrieved = DispatchTime.now().uptimeNanoseconds
        let state = self.state
        let (text, tokens) = try engine.answer(q, injection: injection, maxTokens: maxTokens, shouldStop: { state.stopping })
        let end = DispatchTime.now().uptimeNanoseconds
        state.metrics.asked(seconds: Double(end - start) / 1e9, tokens: tokens)
        let best = result?.candidates.first
        return [
            "answer": text, "tokens": tokens, "method": method.rawValue,
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

    func operation(_ object: Any, field: String) throws -> FactOperation {
        guard let o = object as? [String: Any] else { throw RequestError.invalid(field, "must be a fact object") }
        var limited = o
        limited["source"] = nil
        if let label = o["source"] as? String { limited["source"] = String(label.prefix(128)) }
        let max = state.config.limits.maxFactBytes
        for key in ["statement", "prompt", "target", "subject", "id"] {
            if let s = o[key] as? String, s.utf8.count > max { throw RequestError("too_large", "'\(field).\(key)' is longer than \(max) bytes") }
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
        let stored = report.outcomes.filter(\.isStored).count
        state.metrics.ingested(stored: stored, duplicates: report.outcomes.filter { if case .duplicate = $0 { return true }; return false }.count,
                               rejected: 0, steps: 0)
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
        if let f = r["fact"] { ops.append(try operation(f, field: "fact")) }
        if let fs = r["facts"] {
            guard let list = fs as? [Any] else { throw RequestError.invalid("facts", "must be an array of fact objects") }
            for (i, f) in list.enumerated() { ops.append(try operation(f, field: "facts[\(i)]")) }
        }
        guard !ops.isEmpty else { throw RequestError.missing("fact") }
        for op in ops { if case .add = op {} else { throw RequestError.invalid("fact", "must be a fact to add (use op retract to remove one)") } }
        return try commit(ops)
    }

    func retract(_ r: [String: Any]) throws -> [String: Any] {
        if let id = r["fact_id"] {
            guard let s = id as? String, !s.trimmingCharacters(in: .whitespaces).isEmpty else { throw RequestError.invalid("fact_id", "must be a non-empty string") }
            return try commit([.retractID(s, source: FactSource(kind: .socket, name: "socket"))])
        }
        if let st = r["statement"] {
            guard let s = st as? String, !FactText.normalize(s).isEmpty else { throw RequestError.invalid("statement", "must be a non-empty string") }
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
        return state.metrics.prometheus(gauges: gauges, counters: counters)
    }
}
