import Recipe
import RecipeEvaluation
import Testing

/// The question view in retrieval: a query of several sentences also retrieves with its
/// last sentence, and the retrieval whose best fact beats the sentinel by more wins.
@Suite struct QuestionViewRetrievalTests {
    /// Features by text: a view that is exactly fact 0's features, context that is the
    /// negation of them (so the whole query retrieves nothing).
    static func features(_ e: (KnowledgeEditor, features: [Float])) -> ([String]) -> [Float] {
        let F = e.0.model.config.featureWidth
        let fact0 = Array(e.features[0..<F])
        return { texts in
            texts.flatMap { t in t.hasPrefix("Context") ? fact0.map { -$0 } : fact0 }
        }
    }

    @Test func theLastSentenceRetrievesWhatTheWholeQueryMisses() throws {
        let e = try SubjectRuleRetrievalTests.editor(weight: 0)
        let query = "Context first. What is Alpha?"
        e.0.questionView = false
        #expect(try e.0.retrieve([query], features: Self.features(e))[0].fact == nil)
        e.0.questionView = true
        let r = try e.0.retrieve([query, "Context only"], features: Self.features(e))
        #expect(r[0].fact == 0 && r[0].best == 0 && r[0].byQuestion)
        #expect(r[1].fact == nil && !r[1].byQuestion, "one sentence: the whole query only")
        // The view's retrieval is the one-sentence query's own.
        var alone = try e.0.retrieve(["What is Alpha?"], features: Self.features(e))[0]
        #expect(!alone.byQuestion)
        alone.byQuestion = true
        #expect(r[0] == alone)
    }

    @Test func theSubjectRuleReadsTheWholeQuery() throws {
        // The subject is named only in the context sentence: the view still gets the bonus.
        let e = try SubjectRuleRetrievalTests.editor(weight: 1)
        let whole = try e.0.retrieve(["What is it?"], features: Self.features(e))[0]
        let named = try e.0.retrieve(["Alpha again. What is it?"], features: Self.features(e))[0]
        #expect(named.best == 0 && named.bestScore == whole.bestScore + 2)
    }
}
