// The evaluation's passes over the LLM: many queries per pass instead of one.
//
//   adding   a chunk's facts `PromptRefiner.maxBatch` at a time through the editor's `add`:
//            each fact's key and prompt come from its statement alone, and the refiner
//            refines the facts of one call together (each as alone, up to rounding), so
//            the repository holds what adding them one after another gives, in the same
//            order (fact D + i is sample i)
//   scoring  the queries of consecutive samples (up to `queriesPerPass`) together: one
//            retrieval call, one forward pass for their teacher-forced predictions
//            (`Llama.forward(batch:logitsPerSequence:)`: each sequence's logits as alone),
//            and their free answers generated together (`AnswerBatch`: each answer token for
//            token as `AnswerGenerator.answer` gives it alone)
//
// The unedited model's predictions and answers of unrelated queries are cached across
// chunks, T and methods (they depend on neither), computed in batched passes when missing,
// and they are the predictions and answer of an unrelated query the method puts nothing in
// front of (the same computation).
import Foundation
import Kernels
import Models
import Recipe
import RecipeTraining

extension EditEvaluator {
    /// One query of a chunk: the sample (index in the chunk), what is asked, and its kind.
    struct Query {
        let sample: Int
        let asked: PromptTarget
        let kind: QueryDetail.Kind
    }

    /// What a query got: retrieval, the method's injection, the teacher-forced predictions,
    /// the free answer, and for unrelated queries the unedited model's predictions and answer.
    struct ScoredQuery {
        let query: Query
        let teacherForced: TeacherForcedCase
        let retrieval: Retrieval?
        let injection: Injection
        /// Argmax at every scored position of `teacherForced.input` (-1 elsewhere).
        let predictions: [Int]
        /// Unrelated queries: the unedited model's predictions and answer.
        let before: [Int]
        let unedited: String?
        let generated: String

        /// Token accuracy (edit, paraphrase) or agreement with the unedited model (unrelated).
        var score: Double {
            query.kind == .locality ? EditMetrics.agreement(before: before, after: predictions, case: teacherForced)
                                    : EditMetrics.tokenAccuracy(predictions: predictions, case: teacherForced)
        }
    }

    /// A sample's queries in the order they are scored and reported: the edit, its
    /// paraphrases, its unrelated prompts.
    static func queries(of s: EditSample, sample i: Int) -> [Query] {
        [Query(sample: i, asked: s.request, kind: .reliability)] + s.generality.map { Query(sample: i, asked: $0, kind: .generality) }
            + s.locality.map { Query(sample: i, asked: $0, kind: .locality) }
    }

    /// The end of the samples whose queries are scored together from sample `start` on:
    /// whole samples, up to `queriesPerPass` queries (one sample at least, however many it has).
    func passEnd(_ samples: [EditSample], from start: Int) -> Int {
        var end = start + 1, count = Self.queries(of: samples[start], sample: start).count
        while end < samples.count {
            count += Self.queries(of: samples[end], sample: end).count
            if count > queriesPerPass { break }
            end += 1
        }
        return end
    }

    /// Adds `part`'s facts after those the editor holds, in order, `PromptRefiner.maxBatch`
    /// at a time; `refine`: with their questions and targets for the editor's refiner (a
    /// method that never puts a fact's prompt in front has no use for a refined one).
    /// Returns the seconds of each fact (its group's time over the group's facts).
    func addFacts(_ part: [EditSample], refine: Bool) throws -> [Double] {
        var seconds: [Double] = []
        for start in stride(from: 0, to: part.count, by: PromptRefiner.maxBatch) {
            let group = part[start..<min(part.count, start + PromptRefiner.maxBatch)]
            let clock = Date()
            let statements = group.map(\.statement)
            let requests = refine ? group.map { s in
                editor.refiner?.request(statement: s.statement, question: factsAsStatements ? nil : s.request.prompt,
                                        target: factsAsStatements ? nil : s.request.target)
            } : nil
            try editor.add(statements: statements, subjects: group.map(\.subject), requests: requests, features: features(statements))
            seconds += Array(repeating: Date().timeIntervalSince(clock) / Double(group.count), count: group.count)
        }
        return seconds
    }

    /// Scores `queries` together with `method` (`correctFact(sample)`: the fact of a chunk
    /// sample, for the oracle). Returns them in order, and the seconds of their retrieval
    /// and teacher-forced pass (what a query costs before its free answer).
    func scoreQueries(_ queries: [Query], method: EditMethod, correctFact: (Int) -> Int) throws -> (scored: [ScoredQuery], seconds: Double) {
        let cases = queries.map { teacherForced($0.asked) }
        let unrelated = queries.filter { $0.kind == .locality }.map(\.asked)
        try cacheBefore(unrelated)
        let usesRetrieval = method == .recipe || method == .incontext || method == .recipeText
        let clock = Date()
        let retrievals: [Retrieval?] = usesRetrieval ? try editor.retrieve(queries.map(\.asked.prompt), features: queryFeatures)
                                                     : Array(repeating: nil, count: queries.count)
        let injections = zip(queries, retrievals).map { q, r in
            editor.injection(method, retrieval: r, correctFact: q.kind == .locality ? nil : correctFact(q.sample))
        }
        // An unrelated query with nothing in front is the unedited model's computation,
        // cached: its predictions and its free answer are taken from the caches (a forward
        // gives a sequence the same logits in any batch, so they are what it would compute).
        let run = queries.indices.filter { queries[$0].kind != .locality || injections[$0] != .nothing }
        // A chat question reads an in-context statement inside its user turn
        // (`Injection.placed`, as `ask` does): that turn is what the model reads, and its
        // predictions are kept at the asked case's positions (the same target tokens).
        let placed = zip(queries, injections).map { q, i in i.placed(in: q.asked.prompt, chat: chat) }
        let placedCases = zip(queries, placed).map { q, p in
            p.question == q.asked.prompt ? nil : teacherForced(PromptTarget(prompt: p.question, target: q.asked.target))
        }
        var predictions = queries.map { $0.kind == .locality ? beforeCache[Self.key($0.asked)]! : [] }
        for (i, p) in zip(run, try self.predictions(run.map { (placedCases[$0] ?? cases[$0], placed[$0].injection) })) {
            predictions[i] = placedCases[i].map { Self.moved(p, from: $0, to: cases[i]) } ?? p
        }
        let seconds = Date().timeIntervalSince(clock)

        // Free answers: the missing unedited ones and those of the other queries, together.
        var missing: [String] = []
        for p in unrelated.map(\.prompt) where uneditedCache[p] == nil && !missing.contains(p) { missing.append(p) }
        let texts = try freeAnswers(missing.map { ($0, .nothing) } + run.map { (placed[$0].question, placed[$0].injection) })
        for (p, a) in zip(missing, texts) { uneditedCache[p] = a }
        var generated = [String?](repeating: nil, count: queries.count)
        for (i, a) in zip(run, texts.dropFirst(missing.count)) { generated[i] = a }

        let scored = queries.indices.map { i in
            let q = queries[i], local = q.kind == .locality
            return ScoredQuery(query: q, teacherForced: cases[i], retrieval: retrievals[i], injection: injections[i],
                               predictions: predictions[i], before: local ? beforeCache[Self.key(q.asked)]! : [],
                               unedited: local ? uneditedCache[q.asked.prompt]! : nil,
                               generated: generated[i] ?? uneditedCache[q.asked.prompt]!)
        }
        return (scored, seconds)
    }

    static func key(_ pt: PromptTarget) -> String { pt.prompt + "\u{0}" + pt.target }

    /// Predictions made for case `a` at the positions of case `b`, scored position by scored
    /// position (two cases of one target after different questions); -1 elsewhere.
    static func moved(_ predictions: [Int], from a: TeacherForcedCase, to b: TeacherForcedCase) -> [Int] {
        var out = [Int](repeating: -1, count: b.input.count)
        for (x, y) in zip(a.scored, b.scored) { out[y] = predictions[x] }
        return out
    }

    /// Caches the unedited model's predictions for the unrelated cases that lack them (they
    /// depend on neither T nor the method), in one pass.
    func cacheBefore(_ unrelated: [PromptTarget]) throws {
        var missing: [PromptTarget] = []
        for pt in unrelated where beforeCache[Self.key(pt)] == nil && !missing.contains(pt) { missing.append(pt) }
        let found = try predictions(missing.map { (teacherForced($0), .nothing) })
        for (pt, p) in zip(missing, found) { beforeCache[Self.key(pt)] = p }
    }

    /// Argmax predictions at the scored positions of each case with its injection in front,
    /// in one forward pass (each sequence's logits are what it gets alone); -1 elsewhere.
    func predictions(_ items: [(TeacherForcedCase, Injection)]) throws -> [[Int]] {
        var out = items.map { [Int](repeating: -1, count: $0.0.input.count) }
        let run = items.indices.filter { !items[$0].0.scored.isEmpty }
        guard !run.isEmpty else { return out }
        let inputs = run.map { i in answers.input(items[i].0.input, injection: items[i].1) }
        let rows = zip(run, inputs).map { i, input in LlamaLogitRows.rows(items[i].0.scored.map { $0 + input.shift }) }
        let logits = try lm.llama.forward(batch: inputs.map(\.sequence), logitsPerSequence: rows)
        for (k, i) in run.enumerated() {
            for (j, pos) in items[i].0.scored.enumerated() { out[i][pos] = argmax(Array(logits[k].logits(at: j))) }
        }
        return out
    }

    /// The free answers to `requests` (a prompt and what is put in front of it), generated
    /// together, each as `ask` gives it alone.
    func freeAnswers(_ requests: [(prompt: String, injection: Injection)]) throws -> [String] {
        let batch = AnswerBatch(generator: answers)
        for (tag, r) in requests.enumerated() {
            batch.add(tag: tag, question: try answers.tokens(of: r.prompt, chat: chat), injection: r.injection, maxTokens: answerTokens,
                      stop: stop, handOff: handOff)
        }
        var texts = [String?](repeating: nil, count: requests.count)
        while batch.count > 0 {
            for finished in batch.step() { texts[finished.tag] = try finished.result.get().text }
        }
        return texts.map { $0! }
    }
}
