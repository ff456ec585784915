// The editor the evaluation harness drives (and the worker's in-memory twin): facts in,
// and for a query what each method (`EditMethod`) puts in front of it (`Injection`).
import Foundation
import Recipe
import Storage

/// The outcome of retrieval for one query.
public struct Retrieval: Sendable, Equatable {
    /// The retrieved fact (index in insertion order), nil when the sentinel won.
    public var fact: Int?
    /// The best fact and its scaled score (subject rule applied), whether or not it beat the sentinel.
    public var best: Int?
    public var bestScore: Float
    public var sentinelScore: Float
    /// Whether this is the search of the query's last sentence (`QuestionView`), kept
    /// because it beat the sentinel by more than the whole query's.
    public var byQuestion = false
    /// How far the best fact beats the sentinel (negative: it does not).
    public var margin: Float { bestScore - sentinelScore }

    public init(fact: Int?, best: Int?, bestScore: Float, sentinelScore: Float, byQuestion: Bool = false) {
        (self.fact, self.best, self.bestScore, self.sentinelScore, self.byQuestion) = (fact, best, bestScore, sentinelScore, byQuestion)
    }

    /// The top-1 outcome of a `Retriever` search (rows are fact indices).
    public init(_ r: Retrieved) {
        let best = r.result.candidates.first
        self.init(fact: r.result.hits.first?.row, best: best?.row, bestScore: best?.score ?? -.infinity,
                  sentinelScore: r.result.sentinelScore, byQuestion: r.byQuestion)
    }
}

/// An in-memory knowledge repository with RECIPE retrieval.
public final class KnowledgeEditor {
    public let model: RecipeModel
    public private(set) var statements: [String] = []
    public private(set) var subjects: [String?] = []
    /// The subject rule retrieval applies (the editor's own unless replaced).
    public var subjectRule: SubjectRule
    /// Whether `retrieve(_:features:)` also retrieves with a query's last sentence
    /// (`QuestionView`).
    public var questionView = true
    /// Refines the prompt of each added fact given with its question and target
    /// (`PromptRefiner`); nil keeps the prompt transformer's, as the paper.
    public var refiner: PromptRefiner?
    /// [facts, R] and [facts, P·C]
    private var keys: [Float] = []
    private var prompts: [Float] = []
    private var live: [Bool] = []

    public init(model: RecipeModel) {
        self.model = model
        subjectRule = model.subjectRule
    }

    public var count: Int { statements.count }

    /// Removes every fact.
    public func reset() {
        statements = []
        subjects = []
        keys = []
        prompts = []
        live = []
    }

    /// Adds facts from their statements' encoder features [N, F] (and their subjects, for
    /// the subject rule; their questions and targets, for the `refiner`); returns their indices.
    @discardableResult
    public func add(statements new: [String], subjects newSubjects: [String?]? = nil,
                    requests: [(question: String, target: String)?]? = nil, features: [Float]) throws -> Range<Int> {
        precondition(newSubjects.map { $0.count == new.count } ?? true, "one subject (or nil) per statement")
        precondition(requests.map { $0.count == new.count } ?? true, "one request (or nil) per statement")
        var (k, p) = try model.encodeKnowledge(statements: new, features: features)
        if let refiner, let requests {
            try refiner.refine(&p, rowFloats: model.config.promptLength * model.config.modelWidth, leading: model.prefix([]),
                               requests: requests)
        }
        let start = statements.count
        statements += new
        subjects += newSubjects ?? Array(repeating: nil, count: new.count)
        keys += k
        prompts += p
        live += Array(repeating: true, count: new.count)
        return start..<statements.count
    }

    /// Adds facts whose keys [N, R] and prompts [N, P·C] were encoded before (distractors
    /// reloaded for every chunk of an evaluation); returns their indices.
    @discardableResult
    public func add(statements new: [String], subjects newSubjects: [String?], keys k: [Float], prompts p: [Float]) -> Range<Int> {
        precondition(newSubjects.count == new.count && k.count == new.count * model.config.representationWidth
                     && p.count == new.count * model.config.promptLength * model.config.modelWidth, "rows of the editor's shapes")
        let start = statements.count
        statements += new
        subjects += newSubjects
        keys += k
        prompts += p
        live += Array(repeating: true, count: new.count)
        return start..<statements.count
    }

    /// Makes a fact unretrievable.
    public func retract(_ fact: Int) {
        if live.indices.contains(fact) { live[fact] = false }
    }

    /// The continuous prompt [P, C] of a fact.
    public func prompt(of fact: Int) -> [Float] {
        let w = model.config.promptLength * model.config.modelWidth
        return Array(prompts[(fact * w)..<((fact + 1) * w)])
    }

    /// The facts' keys as retrieval reads them (rows are fact indices).
    public var keyIndex: FactKeys {
        FactKeys(keys: keys, sentinel: model.sentinelKey, statements: statements, subjects: subjects, live: live)
    }

    /// The retrieval the worker runs (`Retriever`), with this editor's scale, subject rule
    /// and question view, query keys from `features` (texts -> [count, F]).
    public func retriever(features: @escaping ([String]) throws -> [Float]) -> Retriever {
        let model = self.model
        return Retriever(scale: model.similarityScale, rule: subjectRule, questionView: questionView) { texts in
            model.encodeQueries(features: try features(texts), count: texts.count)
        }
    }

    /// Top-1 retrieval for each of N queries' features [N, F] (and texts, which the subject
    /// rule reads), with the sentinel rule; whole queries only (the question view needs its
    /// own features: `retrieve(_:features:)`).
    public func retrieve(queries: [String]? = nil, queryFeatures: [Float], count N: Int) throws -> [Retrieval] {
        precondition(queries.map { $0.count == N } ?? true, "one text per query")
        let q = model.encodeQueries(features: queryFeatures, count: N)
        let R = model.config.representationWidth, index = keyIndex
        let retriever = self.retriever(features: { _ in [] })
        return try (0..<N).map { i in
            Retrieval(Retrieved(result: try retriever.search(Array(q[(i * R)..<((i + 1) * R)]), question: queries?[i], in: index, k: 1),
                                byQuestion: false))
        }
    }

    /// Top-1 retrieval for each of the query texts, with the subject rule, the question view
    /// (when `questionView` is on) and the sentinel rule; `features` encodes texts [count, F].
    public func retrieve(_ queries: [String], features: @escaping ([String]) throws -> [Float]) throws -> [Retrieval] {
        try retriever(features: features).retrieve(queries, in: keyIndex).map(Retrieval.init)
    }

    /// What `method` puts in front of a query, given its retrieval and the correct fact (a
    /// prompt as stored: `AnswerGenerator.input` adds the editor's leading token).
    public func injection(_ method: EditMethod, retrieval: Retrieval?, correctFact: Int?) -> Injection {
        let used = method == .oracle ? correctFact : retrieval?.fact
        return Injection(method == .oracle ? .recipe : method, fact: used.map { (prompt(of: $0), statements[$0]) })
    }
}
