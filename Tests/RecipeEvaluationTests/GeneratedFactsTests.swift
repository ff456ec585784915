import Testing
import RecipeEvaluation
import RecipeTraining

/// Recombined distractors: the data's facts first, then one fact's subject in another's
/// template with an answer that template has; every prompt once; the same seed, the same facts.
@Suite struct GeneratedFactsTests {
    static func fact(_ prompt: String, _ target: String, _ subject: String?) -> EditSample {
        EditSample(request: PromptTarget(prompt: prompt, target: target), subject: subject)
    }

    static let data = [
        fact("Toko Yasuda plays the", "piano", "Toko Yasuda"),
        fact("Peter Green plays the", "guitar", "Peter Green"),
        fact("Zuni Indian Reservation is located in", "Estonia", "Zuni Indian Reservation"),
        fact("The mother tongue of Jean Gabin is", "French", "Jean Gabin"),
        fact("The capital of Norway is", "Oslo", nil),
    ]

    @Test func recombinedFactsUseTheDataSubjectsTemplatesAndAnswers() {
        let facts = GeneratedFacts.recombined(Self.data, count: 11, seed: 7)
        #expect(facts.count == 11)
        #expect(Array(facts.prefix(5)) == Self.data)
        #expect(Set(facts.map(\.request.prompt)).count == facts.count)
        let answers = ["{} plays the": ["piano", "guitar"], "{} is located in": ["Estonia"], "The mother tongue of {} is": ["French"]]
        for f in facts.dropFirst(5) {
            let subject = try! #require(f.subject)
            #expect(["Toko Yasuda", "Peter Green", "Zuni Indian Reservation", "Jean Gabin"].contains(subject))
            let template = f.request.prompt.replacingOccurrences(of: subject, with: "{}")
            #expect(answers[template]?.contains(f.request.target) == true, "\(f.request.prompt) \(f.request.target)")
        }
        #expect(GeneratedFacts.recombined(Self.data, count: 11, seed: 7) == facts)
        #expect(GeneratedFacts.recombined(Self.data, count: 11, seed: 8) != facts)
    }

    /// 4 subjects × 3 templates make 12 prompts, 4 of them the data's: asked for more, it
    /// returns what exists and stops; asked for fewer than the data, the data's first.
    @Test func itStopsWhenTheDataCanMakeNoMorePrompts() {
        #expect(GeneratedFacts.recombined(Self.data, count: 100, seed: 1).count == 5 + 12 - 4)
        #expect(GeneratedFacts.recombined(Self.data, count: 2, seed: 1) == Array(Self.data.prefix(2)))
    }
}
