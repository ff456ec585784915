// The socket protocol (Protocol.md): one JSON object per line in, one per line out. This
// file turns a request line into a reply (the `WorkerAPI` types a client reads too);
// `SocketServer` moves the bytes. Every failure becomes {"ok": false, "error": {"code",
// "message"}} with a stable code; nothing a client sends is used as a path or executed, and
// no input can crash the worker.
import Foundation
import Posix
import Recipe
import Storage
import WorkerAPI

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
    public func handle(_ line: ArraySlice<UInt8>, clientGone: @escaping @Sendable () -> Bool = { false }) -> Reply<ReplyBody> {
        var id: JSONValue? = nil
        var op = "invalid"
        do {
            let object = try Self.parse(line)
            id = object["id"]
            if case .string(let s)? = object["op"] { op = Op(rawValue: s) == nil ? "unknown" : s }
            let body: ReplyBody
            switch try decode(object) {
            case .ask(let r): body = .ask(try ask(r, clientGone: clientGone))
            case .retrieve(let r): body = .retrieve(try retrieve(r))
            case .add(let r): body = .add(try add(r))
            case .retract(let r): body = .retract(try retract(r))
            case .stats: body = .stats(try stats())
            case .health: body = .health(health())
            case .metrics: body = .metrics(MetricsReply(metrics: metricsText()))
            }
            state.metrics.request(op)
            return Reply(id: id, body: body)
        } catch {
            state.metrics.request(op)
            let e = (error as? RequestError) ?? RequestError("internal", "\(error)")
            if e.code == "internal" || e.code == "storage" { state.log.error("request_failed", ["op": op, "error": e.message]) }
            return errorReply(e, id: id)
        }
    }

    public func errorReply(_ e: RequestError, id: JSONValue? = nil) -> Reply<ReplyBody> {
        state.metrics.error(e.code)
        return Reply(id: id, error: e)
    }

    // MARK: ask / retrieve

    /// The question of `ask` and `retrieve`: not blank, at most 4 × `limits.maxFactBytes`.
    func question(_ s: String) throws -> String {
        guard !s.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw RequestError.invalid("question", "must not be empty") }
        let limit = state.config.limits.maxFactBytes * 4
        guard s.utf8.count <= limit else { throw RequestError("too_large", "'question' is longer than \(limit) bytes", field: "question", limit: limit) }
        return s
    }

    static func retrievedFact(_ f: Fact) -> RetrievedFact {
        RetrievedFact(id: f.id, statement: f.statement, prompt: f.prompt, target: f.target, subject: f.subject)
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

    func ask(_ r: AskRequest, clientGone: @escaping @Sendable () -> Bool) throws -> AskReply {
        let start = DispatchTime.now().uptimeNanoseconds
        let q = try question(r.question)
        let limits = state.config.limits
        let maxTokens = try integer("max_tokens", r.maxTokens, default: limits.defaultGenerationTokens, range: 1...limits.maxGenerationTokens)
        guard let method = EditMethod(rawValue: r.method ?? "recipe"), method != .oracle else {
            throw RequestError.invalid("method", "must be one of recipe, none, incontext, recipe+text")
        }
        let chat = r.chat ?? false
        let handOff = r.handOff ?? state.config.handOff
        let stop = try stopStrings(r.stop ?? [])
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
        let (injection, asked) = Injection(method, fact: used.map { (snapshot.prompt(row: $0.row), $0.fact.statement) })
            .placed(in: q, chat: chat)
        let input = asked == q ? tokens : try engine.questionTokens(asked, chat: chat)
        let retrieved = DispatchTime.now().uptimeNanoseconds
        let state = self.state
        let generated: GeneratedAnswer
        do {
            defer { if questionTokens > Self.trimAfterTokens { ProcessMemory.returnFreePages() } }
            generated = try engine.answer(input, injection: injection, maxTokens: maxTokens, stop: stop, handOff: handOff,
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
        return AskReply(answer: text, tokens: answerTokens, method: method.rawValue, chat: chat, handOff: handOff,
                        stopReason: generated.stopReason.rawValue, fact: used.map { Self.retrievedFact($0.fact) },
                        score: (used ?? best).map { Double($0.score) }, sentinelScore: result.map { Double($0.sentinelScore) },
                        view: result == nil ? nil : byQuestion ? "question" : "whole", timeStep: snapshot.timeStep,
                        retrievalMS: Double(retrieved - start) / 1e6, latencyMS: Double(end - start) / 1e6)
    }

    func retrieve(_ r: RetrieveRequest) throws -> RetrieveReply {
        let start = DispatchTime.now().uptimeNanoseconds
        let q = try question(r.question)
        let k = try integer("k", r.k, default: 1, range: 1...RetrieveRequest.maxK)
        let (snapshot, result, byQuestion) = try search(q, k: k)
        let candidates = result.candidates.map { h in
            Candidate(fact: Self.retrievedFact(h.fact), score: Double(h.score), aboveSentinel: h.score > result.sentinelScore,
                      subjectNamed: h.subjectNamed)
        }
        var prompt = RetrieveReply.PromptField.notRequested
        if r.includePrompt == true {
            prompt = result.hits.first.map { h in
                .prompt(RetrievedPrompt(rows: snapshot.promptRows, width: snapshot.promptWidth,
                                        values: snapshot.prompt(row: h.row).map { Double($0) }, leadingToken: engine.leadingToken))
            } ?? .noFact
        }
        return RetrieveReply(view: byQuestion ? "question" : "whole", fact: result.hits.first.map { Self.retrievedFact($0.fact) },
                             score: result.hits.first.map { Double($0.score) }, sentinelScore: Double(result.sentinelScore),
                             candidates: candidates, timeStep: snapshot.timeStep, prompt: prompt,
                             latencyMS: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
    }
}
