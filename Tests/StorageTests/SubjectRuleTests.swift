// The subject rule: whole-word, case- and whitespace-insensitive matching of a fact's
// subject in a query, and the rescoring of search candidates it drives.
import Storage
import Testing

@Suite struct SubjectRuleTests {
    func named(_ subject: String?, _ query: String) -> Bool? { SubjectRule.names(subject, in: SubjectRule.Text(query)) }

    @Test func matchesWholeWordsOnly() {
        #expect(named("Danielle Darrieux", "The mother tongue of Danielle Darrieux is") == true)
        #expect(named("Danielle Darrieux", "danielle  DARRIEUX's mother tongue is") == true)
        #expect(named("Riga", "The twin city of Riga is") == true)
        #expect(named("Riga", "Riga") == true)
        #expect(named("Riga", "Rigatoni is made of") == false)
        #expect(named("Riga", "Wait, Riga2 or Riga?") == true)  // the second occurrence is whole
        #expect(named("Dodge Challenger (LC)", "Dodge Challenger (LC), created by") == true)
        #expect(named("Dodge Challenger", "The mother tongue of Léon Blum is") == false)
        #expect(named("Léon Blum", "The mother tongue of Le\u{301}on Blum is") == true)  // NFC on both sides
        #expect(named("Riga", "Riga\u{2019}s twin city is") == true)  // a typographic apostrophe is no letter
        #expect(named("Riga", "Rigaé") == false && named("Riga", "éRiga") == false)  // nor is é a boundary
        #expect(named("Apple A5", "Apple A50 was made by") == false)
        #expect(named("Riga", "") == false && named("Riga", "Rig") == false)
    }

    @Test func unknownSubjectsDoNotApply() {
        #expect(named(nil, "anything") == nil)
        #expect(named("  ", "anything") == nil)
        let rule = SubjectRule(weight: 2)
        #expect(rule.adjusted(10, named: nil) == 10)
        #expect(rule.adjusted(10, named: true) == 12)
        #expect(rule.adjusted(10, named: false) == 8)
    }

    func hit(_ row: Int, _ score: Float, subject: String?) -> RetrievalHit {
        RetrievalHit(row: row, score: score, fact: Fact(id: "f\(row)", statement: "statement \(row)", subject: subject))
    }

    @Test func rescoresCandidatesAndReappliesTheSentinel() {
        // Dense order: 1 (subject not named), 2 (no subject), 3 (named); sentinel at 9.
        let dense = SearchResult(hits: [hit(1, 10, subject: "Paris"), hit(2, 9.5, subject: nil)],
                                 candidates: [hit(1, 10, subject: "Paris"), hit(2, 9.5, subject: nil), hit(3, 8, subject: "Rome")],
                                 sentinelScore: 9)
        let query = "Which river flows through Rome?"
        let off = dense.applying(.off, query: query, k: 3)
        #expect(off.candidates.map(\.row) == [1, 2, 3] && off.hits.map(\.row) == [1, 2])
        #expect(off.candidates.allSatisfy { $0.subjectNamed == nil })

        let on = dense.applying(SubjectRule(weight: 2), query: query, k: 3)
        #expect(on.candidates.map(\.row) == [3, 2, 1])
        #expect(on.candidates.map(\.score) == [10, 9.5, 8])
        #expect(on.candidates.map(\.subjectNamed) == [true, nil, false])
        #expect(on.hits.map(\.row) == [3, 2])
        #expect(on.sentinelScore == 9)

        let top = dense.applying(SubjectRule(weight: 2), query: query, k: 1)
        #expect(top.candidates.map(\.row) == [3] && top.hits.map(\.row) == [3])
        // A query naming no subject: facts with subjects fall below the sentinel.
        #expect(dense.applying(SubjectRule(weight: 2), query: "What is the tallest tree?", k: 3).hits.map(\.row) == [2])
    }
}
