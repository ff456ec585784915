// The question forms of CounterFact's cloze prompts: the relation read from the template's
// words, specific rules before general ones, the subject put back as written; prompts that
// are questions already, that do not name the subject or that name no relation get none.
import Recipe
import RecipeTraining
import Testing

@Suite struct QuestionFormsTests {
    @Test(arguments: [
        ("Toko Yasuda plays the", "Toko Yasuda", "What does Toko Yasuda play?"),
        ("The mother tongue of Danielle Darrieux is", "Danielle Darrieux", "What is the native language of Danielle Darrieux?"),
        ("Danielle Darrieux, a native", "Danielle Darrieux", "What is the native language of Danielle Darrieux?"),
        ("Zuni Indian Reservation is located in the country of", "Zuni Indian Reservation", "Which country is Zuni Indian Reservation in?"),
        ("Zuni Indian Reservation is located in", "Zuni Indian Reservation", "Where is Zuni Indian Reservation located?"),
        ("Toyota Prius is located in the continent", "Toyota Prius", "Which continent is Toyota Prius in?"),
        ("What is the twin city of Lyon? It is", "Lyon", "What is the twin city of Lyon?"),
        ("Pearse Doherty's occupation is", "Pearse Doherty", "What is the profession of Pearse Doherty?"),
        ("Sandy Koufax, who plays the position", "Sandy Koufax", "What position does Sandy Koufax play?"),
        ("Pope Gregory, who holds the position of", "Pope Gregory", "What position does Pope Gregory hold?"),
        ("The headquarter of Lyndon B. Johnson Space Center is located in", "Lyndon B. Johnson Space Center",
         "Where is Lyndon B. Johnson Space Center headquartered?"),
        ("BBC One is owned by", "BBC One", "Who owns BBC One?"),
        ("Christiaan Snouck Hurgronje is affiliated with the religion", "Christiaan Snouck Hurgronje",
         "What religion is Christiaan Snouck Hurgronje affiliated with?"),
    ])
    func clozePromptsBecomeTheirRelationsQuestion(prompt: String, subject: String, question: String) {
        #expect(QuestionForms.question(prompt: prompt, subject: subject) == question)
    }

    /// The noun form of a relation names it as a knowledge base's property label does; two
    /// wordings of one relation share it, and every rule has a noun form with the subject.
    @Test func relationsHaveNounForms() throws {
        let born = try #require(QuestionForms.relation(prompt: "Danielle Darrieux was born in", subject: "Danielle Darrieux"))
        #expect(QuestionForms.nounForm(relation: born, subject: "Toko Yasuda") == "The place of birth of Toko Yasuda is")
        #expect(QuestionForms.relation(prompt: "Toko Yasuda plays the", subject: "Toko Yasuda")
                == QuestionForms.relation(prompt: "Toko Yasuda performs on the", subject: "Toko Yasuda"))
        #expect(QuestionForms.relation(prompt: "Toko Yasuda plays the", subject: "Toko Yasuda") != born)
        for r in QuestionForms.relations {
            let noun = QuestionForms.nounForm(relation: r, subject: "Toko Yasuda")
            #expect(noun.hasPrefix("The ") && noun.hasSuffix(" is") && noun.contains("Toko Yasuda"), "\(noun)")
        }
    }

    @Test func promptsWithoutAKnownRelationOrSubjectGetNone() {
        #expect(QuestionForms.question(prompt: "Toko Yasuda, the", subject: "Toko Yasuda") == nil)
        #expect(QuestionForms.question(prompt: "Toko Yasuda is a", subject: "Toko Yasuda") == nil)
        #expect(QuestionForms.question(prompt: "What is the product made by UniFirst?", subject: "UniFirst") == nil)
        #expect(QuestionForms.question(prompt: "Toko Yasuda plays the", subject: "Someone Else") == nil)
        #expect(QuestionForms.question(prompt: "Toko Yasuda plays the", subject: nil) == nil)
        #expect(QuestionForms.question(prompt: "Toko Yasuda plays the", subject: "") == nil)
    }

    /// `asQuestion` keeps the edit and its target and asks the paraphrase as the question.
    @Test func aSampleAskedAsAQuestion() throws {
        let s = EditSample(request: PromptTarget(prompt: "Toko Yasuda plays the", target: "piano"), subject: "Toko Yasuda",
                           generality: [PromptTarget(prompt: "Toko Yasuda is incredible at", target: "piano")],
                           locality: [PromptTarget(prompt: "John Lennon performs on the", target: "guitar")])
        let q = try #require(QuestionForms.asQuestion(s))
        #expect(q.request == s.request && q.locality == s.locality)
        #expect(q.generality == [PromptTarget(prompt: "What does Toko Yasuda play?", target: "piano")])
        var other = s
        other.request.prompt = "Toko Yasuda, the"
        #expect(QuestionForms.asQuestion(other) == nil)
    }

    /// Training examples carry their question form, and its features are among the texts
    /// training encodes.
    @Test func trainingExamplesCarryTheirQuestion() {
        let set = TrainingSet(samples: [TrainingSetTests.sample("Toko Yasuda plays the", "piano", subject: "Toko Yasuda"),
                                        TrainingSetTests.sample("Toko Yasuda, the", "piano", subject: "Toko Yasuda")])
        #expect(set.examples.map(\.question) == ["What does Toko Yasuda play?", nil])
        #expect(set.texts.contains("What does Toko Yasuda play?") && set.queryTexts.contains("What does Toko Yasuda play?"))
    }
}
