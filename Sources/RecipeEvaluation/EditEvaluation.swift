// The editing evaluation harness (issue #3): the paper's lifelong protocol and metrics,
// every method measured by the same code.
//
// For a number of sequential edits T: start from an empty repository, add T facts (each
// with its edit question and target, which the editor's refiner, if it has one, refines its
// prompt on when the method puts prompts in front; or, with `factsAsStatements`, as its
// statement alone), then score all T samples; repeat over consecutive chunks of T samples
// until `samplesPerT` samples are scored (RECIPE's `evaluate_sequential_edit` walks every
// chunk of the data set the same way) and report means over all scored samples. A fact's
// key and prompt do not depend on the facts before it, so the T facts are added in groups
// and the queries of several samples are scored in one pass over the LLM
// (EditEvaluation+Batch.swift): the figures are those of adding and asking one at a time.
//
// Per sample: Reliability and Generality are teacher-forced token accuracies of the target
// after the edit prompt / paraphrases; Locality the agreement of argmax predictions on the
// unrelated prompts with the unedited model's.
//
// Free generation, what a user reads: every query is answered as `ask` answers it
// (`AnswerGenerator`: greedy, `answerTokens` tokens, the end-of-text tokens and `stop`
// strings end it) from the bare prompt with the method's injection. Edit and paraphrase
// answers: does the answer start with the target (exact match), mention it anywhere, how
// fluent is it (ROME's n-gram entropy, `FluencyMetrics`) and does it loop. Unrelated
// answers: is the answer identical to the unedited model's (when the method puts nothing
// in front, it is the same computation, so it is not run twice). Retrieval accuracy counts
// edit and paraphrase queries for which the sample's own fact was retrieved; the false
// retrieval rate, unrelated queries for which any fact was. The oracle injects the right
// prompt for edit and paraphrase queries and nothing for unrelated ones: retrieval that is
// never wrong.
import Foundation
import Kernels
import Models
import Recipe
import RecipeTraining
import Storage

public struct EvaluationResult: Sendable, Codable, Equatable {
    public var method: EditMethod
    public var T: Int
    public var samples: Int
    public var chunks: Int
    public var reliability: Double
    /// nil when none of the scored samples has a paraphrase (WikiData_recent has none)
    public var generality: Double?
    public var locality: Double
    /// Free generation: edit / paraphrase answers that start with the target.
    public var generationReliability: Double
    public var generationGenerality: Double?
    /// Free generation: edit / paraphrase answers that mention the target anywhere.
    public var mentionReliability: Double
    public var mentionGenerality: Double?
    /// Free generation: unrelated answers identical to the unedited model's.
    public var answersUnchanged: Double
    /// ROME's fluency (mean n-gram entropy, bits) of the edit and paraphrase answers.
    public var fluency: Double
    /// Share of the edit and paraphrase answers that loop (`FluencyMetrics.loops`).
    public var repetition: Double
    /// Tokens each answer could take.
    public var answerTokens: Int
    /// nil for methods without retrieval (none, oracle)
    public var retrievalAccuracy: Double?
    public var falseRetrievalRate: Double?
    /// Seconds per added fact and per scored query (median, p95): a group's or a pass's time
    /// over its facts or queries; a query's is its retrieval and teacher-forced pass (its
    /// free answer apart).
    public var editSecondsMedian: Double
    public var editSecondsP95: Double
    public var querySecondsMedian: Double
    public var querySecondsP95: Double
}

/// One scored query of an evaluation (`recipe eval --details`): what was asked, what the
/// model predicted and generated, and which fact retrieval chose.
public struct QueryDetail: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable { case reliability, generality, locality }
    public var method: EditMethod
    public var T: Int
    /// Index of the sample in the evaluated data.
    public var sample: Int
    public var kind: Kind
    public var prompt: String
    /// The new target (edit and paraphrase queries) or the unrelated prompt's answer.
    public var target: String
    /// Token accuracy (edit, paraphrase) or agreement with the unedited model (unrelated).
    public var score: Double
    /// The argmax tokens at the scored positions, teacher-forced, decoded.
    public var predicted: String
    /// The free answer to the bare prompt, as `ask` gives it.
    public var generated: String?
    /// Edit and paraphrase queries: the answer starts with the target.
    public var exactMatch: Bool?
    /// Edit and paraphrase queries: the answer loops (`FluencyMetrics.loops`).
    public var loops: Bool?
    /// Unrelated queries: the unedited model's answer, when this one differs from it.
    public var unedited: String?
    /// The retrieved fact as a sample index (a distractor d as −1 − d); nil when nothing was
    /// retrieved (the sentinel won) or the method does not retrieve (none, oracle).
    public var retrieved: Int?
    /// For methods with retrieval: the best fact (sample index, retrieved or not), its score
    /// and the sentinel's (RECIPE's scaled similarities).
    public var best: Int?
    public var bestScore: Double?
    public var sentinelScore: Double?
    /// For methods with retrieval: the text whose search was kept, `whole` or `question`
    /// (the last sentence, `QuestionView`).
    public var view: String?
}

public final class EditEvaluator {
    public let lm: LanguageModel
    public let editor: KnowledgeEditor
    /// Encoder features [N, F] of N texts.
    public let features: ([String]) throws -> [Float]
    /// The query head's features of N query texts: `features` unless the editor has its own
    /// query encoder (`QueryEncoder`).
    public let queryFeatures: ([String]) throws -> [Float]
    /// Tokens of each free answer (as `ask`'s `max_tokens`).
    public var answerTokens = 24
    /// Strings that end a free answer (as `ask`'s `stop`).
    public var stop: [String] = []
    /// Hand answers with a continuous prompt to the unedited model once the prompt has
    /// stated the fact (as `ask` with `hand_off`, the worker's default).
    public var handOff = true
    /// Ask every query as a chat user message (as `ask` with `chat`); retrieval still reads
    /// the question alone.
    public var chat = false
    /// The answers, built and generated as the worker's `ask` builds and generates them.
    public let answers: AnswerGenerator
    /// Queries scored together (those of whole samples, one sample at least): one retrieval
    /// call, one forward pass for their teacher-forced predictions, their free answers
    /// generated together; each query gets what it gets alone.
    public var queriesPerPass = 32
    /// Add each fact as its statement alone (as a feed would), without its question and
    /// target: the editor's refiner then refines it only if its options refine statements.
    public var factsAsStatements = false

    /// Facts loaded before the T edits of every chunk and never scored (their statements,
    /// as a feed would give them): retrieval among many loaded facts. Encoded once
    /// (`loadDistractors`), reloaded for every chunk.
    public private(set) var distractors: (statements: [String], subjects: [String?], keys: [Float], prompts: [Float]) = ([], [], [], [])

    private var caseCache: [String: TeacherForcedCase] = [:]
    var beforeCache: [String: [Int]] = [:]
    var uneditedCache: [String: String] = [:]

    public init(lm: LanguageModel, model: RecipeModel, features: @escaping ([String]) throws -> [Float],
                queryFeatures: (([String]) throws -> [Float])? = nil) {
        precondition(queryFeatures != nil || model.config.queryEncoderLayers == 0, "an editor with its own query encoder needs its features")
        self.lm = lm
        editor = KnowledgeEditor(model: model)
        answers = AnswerGenerator(lm: lm, model: model)
        self.features = features
        self.queryFeatures = queryFeatures ?? features
    }

    func teacherForced(_ pt: PromptTarget) -> TeacherForcedCase {
        let key = Self.key(pt)
        if let c = caseCache[key] { return c }
        let asked = (try? answers.text(of: pt.prompt, chat: chat)) ?? pt.prompt
        let c = TeacherForcedCase(prompt: asked, target: pt.target, tokenize: { self.lm.tokenizer.encode($0) })
        caseCache[key] = c
        return c
    }

    /// The `candidates` whose subject no prompt of `scored` names. A distractor whose subject
    /// occurs as whole words (`SubjectRule.names`) in a sample's edit, paraphrase or unrelated
    /// prompt answers that prompt with the knowledge it states, which is no mistake to count
    /// against the unrelated figure. CounterFact's unrelated prompts are about subjects that
    /// other CounterFact facts edit ("Queen Maud Land is in" and the fact "Queen Maud Land is
    /// in Asia"). Distractors without a subject are kept.
    public static func distractors(_ candidates: [EditSample], sharingNoSubjectWith scored: [EditSample]) -> [EditSample] {
        let prompts = scored.flatMap { [$0.request.prompt] + $0.generality.map(\.prompt) + $0.locality.map(\.prompt) }
        let text = SubjectRule.Text(prompts.joined(separator: "\n"))
        return candidates.filter { c in SubjectRule.names(c.subject, in: text) != true }
    }

    /// Encodes `samples`' statements (the transformer's prompts, no refinement) as the
    /// distractors of every later `evaluate`, `batch` at a time; `progress(done, total)`.
    public func loadDistractors(_ samples: [EditSample], batch: Int = 256, progress: (Int, Int) -> Void = { _, _ in }) throws {
        var d: (statements: [String], subjects: [String?], keys: [Float], prompts: [Float]) = ([], [], [], [])
        for start in stride(from: 0, to: samples.count, by: batch) {
            let part = samples[start..<min(samples.count, start + batch)]
            let statements = part.map(\.statement)
            let (k, p) = try editor.model.encodeKnowledge(statements: statements, features: try features(statements))
            d.statements += statements
            d.subjects += part.map(\.subject)
            d.keys += k
            d.prompts += p
            progress(d.statements.count, samples.count)
        }
        distractors = d
    }

    /// Evaluates `method` after T sequential edits over chunks of `samples`, scoring at most
    /// `samplesPerT` samples. `progress(done, total)` is called after every scored sample;
    /// `detail`, when given, receives every scored query.
    public func evaluate(samples: [EditSample], T: Int, method: EditMethod, samplesPerT: Int,
                         detail: ((QueryDetail) -> Void)? = nil,
                         progress: (Int, Int) -> Void = { _, _ in }) throws -> EvaluationResult {
        guard T >= 1 else { throw RecipeError.invalidArgument("T must be at least 1") }
        guard samples.count >= T else {
            throw RecipeError.invalidArgument("T = \(T) needs \(T) samples, the data has \(samples.count)")
        }
        let chunks = max(1, min(samples.count / T, (samplesPerT + T - 1) / T))
        let total = chunks * T
        var rel = 0.0, gen = 0.0, loc = 0.0, genEMRel = 0.0, genEMGen = 0.0, mentionRel = 0.0, mentionGen = 0.0
        var unchanged = 0, unrelatedAnswers = 0
        var edited: [String] = []  // the edit and paraphrase answers, for fluency and repetition
        var retrievedRight = 0, retrievalQueries = 0, falseRetrievals = 0, unrelatedQueries = 0
        var editTimes: [Double] = [], queryTimes: [Double] = []
        let usesRetrieval = method == .recipe || method == .incontext || method == .recipeText
        var done = 0

        for chunk in 0..<chunks {
            let first = chunk * T
            let part = Array(samples[first..<(first + T)])
            editor.reset()
            // Distractors first (indices 0..<D), then the chunk's edits: sample i is fact D + i.
            let D = distractors.statements.count
            /// A fact index as a sample index; a distractor d as −1 − d.
            func sampleOf(_ fact: Int) -> Int { fact >= D ? first + fact - D : -1 - fact }
            if method != .none && D > 0 {
                editor.add(statements: distractors.statements, subjects: distractors.subjects, keys: distractors.keys, prompts: distractors.prompts)
            }
            if method != .none {
                // The facts' encodings are independent of each other: added in groups, they
                // are what adding them one after another gives.
                editTimes += try addFacts(part, refine: method == .recipe || method == .oracle || method == .recipeText)
            }
            var pending = [ScoredQuery]().makeIterator(), scoredUpTo = 0
            for (i, s) in part.enumerated() {
                if i == scoredUpTo {  // the queries of this and the next samples, scored together
                    let pass = i..<passEnd(part, from: i)
                    let queries = pass.flatMap { Self.queries(of: part[$0], sample: $0) }
                    let (scored, seconds) = try scoreQueries(queries, method: method, correctFact: { D + $0 })
                    queryTimes += Array(repeating: seconds / Double(queries.count), count: queries.count)
                    pending = scored.makeIterator()
                    scoredUpTo = pass.upperBound
                }
                /// Takes one scored query: token accuracy (edit, paraphrase) or agreement with
                /// the unedited model (unrelated), and its free answer: for edit and paraphrase
                /// queries whether it starts with (mentions) the target, for unrelated ones
                /// whether it is the unedited model's.
                func score(_ pt: PromptTarget, _ kind: QueryDetail.Kind) throws -> (score: Double, exactMatch: Bool, mentions: Bool) {
                    let q = pending.next()!
                    precondition(q.query.asked == pt && q.query.kind == kind && q.query.sample == i, "queries scored in their order")
                    let (c, retrieval, preds, generated, score) = (q.teacherForced, q.retrieval, q.predictions, q.generated, q.score)
                    if let retrieval {
                        if kind == .locality {
                            unrelatedQueries += 1
                            if retrieval.fact != nil { falseRetrievals += 1 }
                        } else {
                            retrievalQueries += 1
                            if retrieval.fact == D + i { retrievedRight += 1 }
                        }
                    }
                    var exactMatch = false, mentions = false, loops: Bool?, unedited: String?
                    if kind == .locality {
                        let reference = q.unedited!
                        unrelatedAnswers += 1
                        if generated == reference { unchanged += 1 } else { unedited = reference }
                    } else {
                        exactMatch = EditMetrics.generationMatches(generated: generated, target: pt.target)
                        mentions = EditMetrics.mentions(generated: generated, target: pt.target)
                        loops = FluencyMetrics.loops(generated)
                        edited.append(generated)
                    }
                    if let detail {
                        detail(QueryDetail(
                            method: method, T: T, sample: first + i, kind: kind, prompt: pt.prompt, target: pt.target,
                            score: score, predicted: try lm.tokenizer.decode(c.scored.map { preds[$0] }, skipSpecial: false),
                            generated: generated, exactMatch: kind == .locality ? nil : exactMatch, loops: loops, unedited: unedited,
                            retrieved: retrieval?.fact.map(sampleOf), best: retrieval?.best.map(sampleOf),
                            bestScore: retrieval.flatMap { $0.best == nil ? nil : Double($0.bestScore) }, sentinelScore: retrieval.map { Double($0.sentinelScore) },
                            view: retrieval.map { $0.byQuestion ? "question" : "whole" }))
                    }
                    return (score, exactMatch, mentions)
                }
                let r = try score(s.request, .reliability)
                rel += r.score
                genEMRel += r.exactMatch ? 1 : 0
                mentionRel += r.mentions ? 1 : 0
                if !s.generality.isEmpty {  // the mean over the sample's paraphrases
                    var acc = 0.0, em = 0.0, mention = 0.0
                    for g in s.generality {
                        let r = try score(g, .generality)
                        acc += r.score
                        em += r.exactMatch ? 1 : 0
                        mention += r.mentions ? 1 : 0
                    }
                    gen += acc / Double(s.generality.count)
                    genEMGen += em / Double(s.generality.count)
                    mentionGen += mention / Double(s.generality.count)
                }
                if !s.locality.isEmpty {  // the mean over the sample's unrelated prompts
                    var agree = 0.0
                    for l in s.locality { agree += try score(l, .locality).score }
                    loc += agree / Double(s.locality.count)
                } else {
                    loc += 1
                }
                done += 1
                progress(done, total)
            }
        }
        let withGen = samples.prefix(total).filter { !$0.generality.isEmpty }.count
        let n = Double(total)
        return EvaluationResult(
            method: method, T: T, samples: total, chunks: chunks,
            reliability: rel / n, generality: withGen > 0 ? gen / Double(withGen) : nil, locality: loc / n,
            generationReliability: genEMRel / n, generationGenerality: withGen > 0 ? genEMGen / Double(withGen) : nil,
            mentionReliability: mentionRel / n, mentionGenerality: withGen > 0 ? mentionGen / Double(withGen) : nil,
            answersUnchanged: unrelatedAnswers > 0 ? Double(unchanged) / Double(unrelatedAnswers) : 1,
            fluency: FluencyMetrics.fluency(edited), repetition: FluencyMetrics.repetition(edited), answerTokens: answerTokens,
            retrievalAccuracy: usesRetrieval ? Double(retrievedRight) / Double(max(1, retrievalQueries)) : nil,
            falseRetrievalRate: usesRetrieval ? Double(falseRetrievals) / Double(max(1, unrelatedQueries)) : nil,
            editSecondsMedian: Self.quantile(editTimes, 0.5), editSecondsP95: Self.quantile(editTimes, 0.95),
            querySecondsMedian: Self.quantile(queryTimes, 0.5), querySecondsP95: Self.quantile(queryTimes, 0.95))
    }

    static func quantile(_ xs: [Double], _ q: Double) -> Double {
        guard !xs.isEmpty else { return 0 }
        let s = xs.sorted()
        return s[min(s.count - 1, Int((Double(s.count - 1) * q).rounded()))]
    }
}
