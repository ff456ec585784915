import Testing
import Recipe
import RecipeTraining
import Foundation

@Suite struct TrainingSetTests {
    static func sample(_ prompt: String, _ target: String, subject: String?) -> EditSample {
        EditSample(request: PromptTarget(prompt: prompt, target: target), subject: subject,
                   generality: [PromptTarget(prompt: "Paraphrase: " + prompt, target: target)],
                   locality: [PromptTarget(prompt: "Unrelated prompt", target: "x")])
    }

    static let samples = [
        sample("The mother tongue of Danielle Darrieux is", "English", subject: "Danielle Darrieux"),
        sample("Toko Yasuda plays the", "piano", subject: "Toko Yasuda"),
        sample("BBC One is owned by", "Sega", subject: "BBC One"),
        sample("The mother tongue of Jean Gabin is", "German", subject: "Jean Gabin"),
        sample("The capital of Norway is", "Rome", subject: nil),
        sample("What is the product made by UniFirst?", "drones", subject: "Acme"),  // subject not in the prompt
    ]

    /// Each example that names its subject gets another relation's prompt with its own subject
    /// swapped in; the others get none; the same seed gives the same questions, and the
    /// questions join the texts whose features training needs.
    @Test func sameSubjectNegativesSwapTheSubjectIntoAnotherRelation() {
        var set = TrainingSet(samples: Self.samples)
        let added = set.addSameSubjectNegatives(seed: 3)
        #expect(added == 4)
        let templates = ["The mother tongue of {} is", "{} plays the", "{} is owned by"]
        for (i, e) in set.examples.enumerated() {
            guard let subject = Self.samples[i].subject, e.reliability.prompt.contains(subject) else {
                #expect(e.sameSubject == nil, "example \(i) cannot give its subject a question")
                continue
            }
            let q = try! #require(e.sameSubject, "example \(i) has no same-subject question")
            let template = q.replacingOccurrences(of: subject, with: "{}")
            let own = e.reliability.prompt.replacingOccurrences(of: subject, with: "{}")
            #expect(q.contains(subject) && templates.contains(template) && template != own, "example \(i): '\(q)'")
            #expect(set.texts.contains(q))
        }
        var again = TrainingSet(samples: Self.samples)
        again.addSameSubjectNegatives(seed: 3)
        #expect(again.examples == set.examples)
    }

    /// A donor asks another relation that the question rules know: never a rewording of the
    /// fact's own relation ("performs on" for "plays"), never a template that names none
    /// ("{}, the"); with `otherForms` 1 every negative is that relation's question or noun form.
    @Test func sameSubjectNegativesAskAnotherKnownRelation() {
        let samples = [
            Self.sample("Toko Yasuda plays the", "piano", subject: "Toko Yasuda"),
            Self.sample("Peter Green performs on the", "drums", subject: "Peter Green"),
            Self.sample("Anna Smith, the", "violin", subject: "Anna Smith"),
            Self.sample("The mother tongue of Jean Gabin is", "German", subject: "Jean Gabin"),
        ]
        let allowed = [
            ["The mother tongue of Toko Yasuda is"],
            ["The mother tongue of Peter Green is"],
            ["Anna Smith plays the", "Anna Smith performs on the", "The mother tongue of Anna Smith is"],
            ["Jean Gabin plays the", "Jean Gabin performs on the"],
        ]
        let forms: [[String]?] = [
            ["What is the native language of Toko Yasuda?", "The native language of Toko Yasuda is"],
            ["What is the native language of Peter Green?", "The native language of Peter Green is"],
            nil,
            ["What does Jean Gabin play?", "The instrument played by Jean Gabin is"],
        ]
        for seed in UInt64(0)..<20 {
            var set = TrainingSet(samples: samples)
            #expect(set.addSameSubjectNegatives(seed: seed) == 4)
            for (i, e) in set.examples.enumerated() {
                #expect(allowed[i].contains(e.sameSubject ?? "none"), "seed \(seed), example \(i): \(e.sameSubject ?? "none")")
            }
            var other = TrainingSet(samples: samples)
            other.addSameSubjectNegatives(seed: seed, otherForms: 1)
            for (i, f) in forms.enumerated() {
                guard let f else { continue }
                #expect(f.contains(other.examples[i].sameSubject ?? "none"), "seed \(seed), example \(i)")
            }
        }
    }

    /// The texts to encode include every query's question view (retrieval reads it too).
    @Test func textsHoldTheQuestionViews() {
        let s = EditSample(request: PromptTarget(prompt: "Riga is a twin city of", target: "Athens"), subject: "Riga",
                           generality: [PromptTarget(prompt: "It rained. Riga's twin city is", target: "Athens")],
                           locality: [PromptTarget(prompt: "Notes\nThe capital of Latvia is", target: "Riga")])
        let texts = TrainingSet(samples: [s]).texts
        #expect(texts.contains("Riga's twin city is") && texts.contains("The capital of Latvia is"))
    }

    /// A fraction gives that share of the examples a question (of many, so the share is close).
    @Test func sameSubjectFraction() {
        let many = (0..<400).map { i in
            Self.sample(i % 2 == 0 ? "Person \(i) plays the" : "The mother tongue of Person \(i) is", "x", subject: "Person \(i)")
        }
        var set = TrainingSet(samples: many)
        let added = set.addSameSubjectNegatives(seed: 9, fraction: 0.25)
        #expect(added > 60 && added < 140, "\(added) of 400 at fraction 0.25")
        #expect(set.examples.filter { $0.sameSubject != nil }.count == added)
    }
}
