import Foundation
import Recipe
import RecipeEvaluation
import RecipeTestSupport
import RecipeTraining
import Storage
import Testing

/// `RecipeConfig.subjectWeight`: off unless a config says so, and when on, the editor's
/// retrieval rescores its dense candidates by whether the query names their subjects.
@Suite struct SubjectRuleRetrievalTests {
    /// A small editor at its initialization (retrieves iff cosine > 0.6), prompts from the
    /// knowledge representation alone (no LLM), holding three facts with random features:
    /// subjects "Alpha", none, "Gamma".
    static func editor(weight: Float) throws -> (KnowledgeEditor, features: [Float]) {
        var c = RecipeConfig()
        c.featureWidth = 32
        c.representationWidth = 16
        c.promptLength = 1
        c.modelWidth = 4
        c.statementTokens = 0
        c.subjectWeight = weight
        let p = RecipeParameters(config: c)
        RecipeInitializer.initialize(p, seed: 5)
        let editor = KnowledgeEditor(model: try RecipeModel(parameters: p))
        let features = uniform(3 * c.featureWidth, seed: 11, scale: 1)
        try editor.add(statements: ["Alpha is one", "Beta is two", "Gamma is three"], subjects: ["Alpha", nil, "Gamma"],
                       features: features)
        return (editor, features)
    }

    /// Retrieval for a query whose features are fact 0's.
    static func retrieve(_ e: (KnowledgeEditor, features: [Float]), _ query: String?) throws -> Retrieval {
        let F = e.0.model.config.featureWidth
        return try e.0.retrieve(queries: query.map { [$0] }, queryFeatures: Array(e.features[0..<F]), count: 1)[0]
    }

    @Test func offByDefaultAndInOldConfigs() throws {
        #expect(RecipeConfig().subjectWeight == 0)
        let old = try JSONDecoder().decode(RecipeConfig.self, from: Data(#"{"promptLength": 3}"#.utf8))
        #expect(old.subjectWeight == 0)
        var bad = RecipeConfig()
        bad.subjectWeight = -1
        #expect(throws: RecipeError.self) { try bad.validate() }
    }

    @Test func namedSubjectsGainAndOthersLose() throws {
        let dense = try Self.retrieve(try Self.editor(weight: 0), "What is Alpha?")
        #expect(dense.best == 0 && dense.fact == 0)

        let on = try Self.editor(weight: 1)
        #expect(on.0.subjectRule == SubjectRule(weight: 1))
        let named = try Self.retrieve(on, "What is Alpha?")
        #expect(named.best == 0 && named.bestScore == dense.bestScore + 1 && named.sentinelScore == dense.sentinelScore)
        let unnamed = try Self.retrieve(on, "What is alphabet soup?")  // not a whole-word match
        #expect(unnamed.bestScore < dense.bestScore)
        // Without the query's text the rule cannot look: dense retrieval.
        #expect(try Self.retrieve(on, nil) == dense)
    }

    @Test func aNamedCandidateOvertakesADenserOne() throws {
        let heavy = try Self.editor(weight: 1000)
        let gamma = try Self.retrieve(heavy, "And Gamma?")
        #expect(gamma.best == 2 && gamma.fact == 2)
        // Nothing named: the fact without a subject is the only one not pushed down.
        #expect(try Self.retrieve(heavy, "Nothing named here").best == 1)
    }
}

/// The retrieval report counts apart the unrelated prompts that ask a loaded fact's own
/// question (that fact's subject named, its answer before the edit expected).
@Suite struct RetrievalReportTests {
    @Test func sameQuestionRetrievalsAreCountedApart() throws {
        let (editor, _) = try SubjectRuleRetrievalTests.editor(weight: 0)
        let F = editor.model.config.featureWidth
        let samples = [
            EditSample(request: PromptTarget(prompt: "Nintendo DS is developed by", target: "Nissan"), subject: "Nintendo DS",
                       groundTruth: "Nintendo", generality: [PromptTarget(prompt: "Nintendo DS comes from", target: "Nissan")],
                       locality: [PromptTarget(prompt: "Game Boy, developed by", target: "Nintendo")]),
            EditSample(request: PromptTarget(prompt: "Riga is a twin city of", target: "Athens"), subject: "Riga",
                       groundTruth: "Kiev", generality: [PromptTarget(prompt: "Riga's twin city is", target: "Athens")],
                       locality: [PromptTarget(prompt: "Nintendo DS, developed by", target: "Nintendo")]),
            EditSample(request: PromptTarget(prompt: "Toko Yasuda plays the", target: "violin"), subject: "Toko Yasuda",
                       groundTruth: "guitar", generality: [PromptTarget(prompt: "Toko Yasuda is a", target: "violin")],
                       locality: [PromptTarget(prompt: "Toko Yasuda was born in", target: "Kiev")]),
        ]
        let set = TrainingSet(samples: samples)
        // Every query has the features of a statement: the edit prompt and paraphrase their
        // own fact's, sample 1's unrelated prompt fact 0's (it asks fact 0's question), sample
        // 2's its own fact's (the same subject, another answer: a false retrieval).
        // Fact i's features: the i-th unit vector in each of the four blocks, so that only a
        // query with the same features is close (cosine 1 against 0).
        func row(_ i: Int) -> [Float] { (0..<F).map { $0 % (F / 4) == i ? 1 : 0 } }
        var texts: [String] = [], features: [Float] = []
        func put(_ text: String, _ fact: Int) { texts.append(text); features += row(fact) }
        for (i, s) in samples.enumerated() {
            put(s.statement, i)
            put(s.request.prompt, i)
            put(s.generality[0].prompt, i)
        }
        put(samples[0].locality[0].prompt, 2)  // retrieves fact 2 without naming its subject: false
        put(samples[1].locality[0].prompt, 0)
        put(samples[2].locality[0].prompt, 2)
        let table = FeatureTable(width: F, texts: texts, features: features)
        let report = RetrievalEvaluation.evaluate(model: editor.model, set: set, features: table)
        #expect(report.editAccuracy == 1 && report.paraphraseAccuracy == 1)
        #expect(report.falseRetrievalRate == 1)
        #expect(abs(report.falseRetrievalSameQuestion - 1.0 / 3) < 1e-9)
    }
}
