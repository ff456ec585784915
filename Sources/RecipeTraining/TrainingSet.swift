// Training examples for the editor: each edit sample gives the knowledge statement, the
// edit query (reliability), a paraphrase (generality) and an unrelated query (locality),
// as the reference's CounterFact/zsRE meta-training data does.
import Kernels
import Posix
import Recipe
import Storage

public struct TrainingExample: Sendable, Equatable {
    public var statement: String
    public var reliability: PromptTarget
    public var generality: PromptTarget
    public var locality: PromptTarget
    /// The edit's subject, when its dataset names it.
    public var subject: String?
    /// A question about the same subject through another relation (`addSameSubjectNegatives`):
    /// another unrelated query, and the hardest kind, since it names the fact's subject.
    public var sameSubject: String?
    /// The edit prompt's answer before the edit, when the dataset gives it.
    public var groundTruth: String?
    /// The edit asked as a person would type it (`QuestionForms`), when its relation has one.
    public var question: String?
    /// The edit in its relation's noun form ("The place of birth of Toko Yasuda is"), when
    /// its relation has one.
    public var nounForm: String?
    /// Whether the LLM reads the edit and paraphrase queries as chat user turns (drawn per
    /// training step: `RecipeConfig.chatFraction`).
    public var chat = false
}

public struct TrainingSet: Sendable {
    public var examples: [TrainingExample]
    /// For each example, the other example whose statement is most similar (hard negatives:
    /// see `findNeighbors`); nil until computed.
    public var neighbors: [Int]?

    /// Uses every sample that has at least one paraphrase and one unrelated prompt.
    public init(samples: [EditSample]) {
        examples = samples.compactMap { s in
            guard let g = s.generality.first, let l = s.locality.first else { return nil }
            let forms = s.subject.flatMap { subject in
                QuestionForms.relation(prompt: s.request.prompt, subject: subject).map { r in
                    (question: QuestionForms.question(relation: r, subject: subject), noun: QuestionForms.nounForm(relation: r, subject: subject))
                }
            }
            return TrainingExample(statement: s.statement, reliability: s.request, generality: g, locality: l, subject: s.subject,
                                   groundTruth: s.groundTruth, question: forms?.question, nounForm: forms?.noun)
        }
    }

    public var count: Int { examples.count }

    /// Every text whose encoder features training and the retrieval report need: the
    /// statements, the queries and the queries' question views (`QuestionView`).
    public var texts: [String] {
        examples.flatMap { e in [e.statement] + queryTexts(e) }
    }

    /// The texts the query head reads: `texts` without the statements.
    public var queryTexts: [String] { examples.flatMap(queryTexts) }

    private func queryTexts(_ e: TrainingExample) -> [String] {
        let queries = [e.reliability.prompt, e.generality.prompt, e.locality.prompt] + [e.sameSubject, e.question, e.nounForm].compactMap { $0 }
        return queries + queries.compactMap(QuestionView.question(of:))
    }

    /// Gives every example whose edit prompt names its subject a question about that subject
    /// through another relation: the edit prompt of another example, drawn from (seed), with
    /// that example's subject replaced by this one's ("The mother tongue of Danielle Darrieux
    /// is" for a fact about where Danielle Darrieux was born), or, for a share `otherForms`
    /// of them, that relation's question or noun form, one or the other at random ("What is
    /// the native language of Danielle Darrieux?", "The native language of Danielle Darrieux
    /// is"). CounterFact's and zsRE's unrelated prompts are about other subjects, so
    /// without these the sentinel never learns that naming a fact's subject is not enough
    /// (WikiData_recent's locality prompts are exactly such questions). The donor's relation
    /// must be one `QuestionForms` knows and not the example's own: a template that names
    /// no relation ("{}, the") or rewords the same one ("{} performs on the" for "{} plays
    /// the") asks what the fact answers and would teach retrieval to refuse it. `fraction` of
    /// the examples (drawn from seed) get one. Returns how many did.
    @discardableResult
    public mutating func addSameSubjectNegatives(seed: UInt64, fraction: Double = 1, otherForms: Double = 0) -> Int {
        // the edit prompt with its subject cut out (nil when it does not name it)
        let templates = examples.map { PromptTemplate(prompt: $0.reliability.prompt, subject: $0.subject) }
        let relations = examples.map { QuestionForms.relation(prompt: $0.reliability.prompt, subject: $0.subject) }
        let donors = templates.indices.filter { templates[$0] != nil && relations[$0] != nil }
        guard !donors.isEmpty else { return 0 }
        var rng = SplitMix64(seed: seed ^ 0x5A3E_5B1E_C7D0_0001)
        var added = 0
        for i in examples.indices {
            let drawn = rng.unitDouble() < fraction
            guard drawn, let subject = examples[i].subject, templates[i] != nil else { continue }
            for _ in 0..<8 {  // a few draws to find another relation
                let d = donors[Int(rng.next() % UInt64(donors.count))]
                guard let relation = relations[d], relation != relations[i], let t = templates[d] else { continue }
                if rng.unitDouble() < otherForms {
                    examples[i].sameSubject = rng.next() & 1 == 0 ? QuestionForms.question(relation: relation, subject: subject)
                                                                   : QuestionForms.nounForm(relation: relation, subject: subject)
                } else {
                    examples[i].sameSubject = t.filled(with: subject)
                }
                added += 1
                break
            }
        }
        return added
    }

    /// Finds, for every example, the most similar other statement by the cosine of the
    /// encoder's mean-pooled block (one sgemm per chunk of rows). Random batches almost never
    /// hold two facts that a query could confuse; putting each fact's nearest neighbour in
    /// the same batch gives the contrastive losses the hard negatives that retrieval over
    /// thousands of facts has to beat.
    public mutating func findNeighbors(features: FeatureTable) {
        let N = count, F = features.width, D = F / 4
        guard N > 1 else { return }
        // [N, D] unit mean-pooled vectors of the statements
        var m = [Float](repeating: 0, count: N * D)
        let all = features.gather(examples.map(\.statement))
        for i in 0..<N {
            var s: Float = 0
            for j in 0..<D { let v = all[i * F + D + j]; m[i * D + j] = v; s += v * v }
            let inv = s > 0 ? 1 / s.squareRoot() : 0
            for j in 0..<D { m[i * D + j] *= inv }
        }
        var best = [Int](repeating: 0, count: N)
        let chunk = 512
        var sims = [Float](repeating: 0, count: chunk * N)
        for start in stride(from: 0, to: N, by: chunk) {
            let rows = min(chunk, N - start)
            m.withUnsafeBufferPointer { mb in
                sims.withUnsafeMutableBufferPointer { sb in
                    matmulForward(sb.baseAddress!, mb.baseAddress! + start * D, mb.baseAddress!, nil, T: rows, C: D, OC: N)
                }
            }
            for r in 0..<rows {
                var arg = -1, top = -Float.infinity
                for j in 0..<N where j != start + r && sims[r * N + j] > top { top = sims[r * N + j]; arg = j }
                best[start + r] = arg
            }
        }
        neighbors = best
    }

    /// The example indices of training step `step` (0-based) with batch size `B`: epochs
    /// walk a permutation drawn from (seed, epoch), so the batch of any step is a pure
    /// function of (seed, step) and a resumed run sees exactly the batches it would have.
    /// With `neighbors`, half the batch is drawn that way and each is followed by its
    /// nearest neighbour.
    public func batch(step: Int, size B: Int, seed: UInt64) -> [Int] {
        let N = count
        guard N > 0 else { return [] }
        if let neighbors, B >= 2 {
            let seeds = randomBatch(step: step, size: (B + 1) / 2, seed: seed)
            var out: [Int] = []
            var seen = Set<Int>()
            for i in seeds {
                for j in [i, neighbors[i]] where out.count < B && seen.insert(j).inserted { out.append(j) }
            }
            var k = 0
            let fill = randomBatch(step: step, size: min(N, 2 * B), seed: seed ^ 0xA5A5_A5A5)
            while out.count < min(B, N) && k < fill.count {
                if seen.insert(fill[k]).inserted { out.append(fill[k]) }
                k += 1
            }
            return out
        }
        return randomBatch(step: step, size: B, seed: seed)
    }

    private func randomBatch(step: Int, size B: Int, seed: UInt64) -> [Int] {
        let N = count
        var out: [Int] = []
        var position = step * B
        while out.count < min(B, N) {
            let epoch = position / N
            let perm = permutation(N, seed: seed &+ UInt64(epoch) &* 0x9E37_79B9)
            out.append(perm[position % N])
            position += 1
        }
        return out
    }

    private func permutation(_ n: Int, seed: UInt64) -> [Int] {
        var rng = SplitMix64(seed: seed)
        var p = Array(0..<n)
        for i in stride(from: n - 1, to: 0, by: -1) {
            let j = Int(rng.next() % UInt64(i + 1))
            p.swapAt(i, j)
        }
        return p
    }
}
