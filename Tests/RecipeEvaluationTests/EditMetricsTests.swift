import Testing
import Foundation
import Recipe
import RecipeEvaluation
import RecipeTraining

/// A toy tokenizer: one token per space-separated word, a leading space kept with its word,
/// ids from a fixed table, so expectations can be written by hand.
private func toyTokenize(_ s: String) -> [Int] {
    var out: [Int] = []
    var word = ""
    for ch in s {
        if ch == " " && !word.isEmpty && word != " " { out.append(id(word)); word = "" }
        word.append(ch)
    }
    if !word.isEmpty { out.append(id(word)) }
    return out
}

private func id(_ w: String) -> Int { Int(w.unicodeScalars.reduce(UInt32(7)) { $0 &* 31 &+ $1.value } % 100_000) }

@Suite struct EditMetricsTests {
    @Test func caseAddsLeadingSpaceAndScoresTargetPositions() {
        let c = TeacherForcedCase(prompt: "The capital of France is", target: "Paris", tokenize: toyTokenize)
        // tokens: The | capital | of | France | is | Paris -> 6; input = first 5, labels = last 5
        #expect(c.input.count == 5)
        #expect(c.labels.last == id(" Paris"))
        #expect(c.scored == 4..<5)
    }

    @Test func targetAlreadyStartingWithSpaceIsNotDoubled() {
        let a = TeacherForcedCase(prompt: "A is", target: " B", tokenize: toyTokenize)
        let b = TeacherForcedCase(prompt: "A is", target: "B", tokenize: toyTokenize)
        #expect(a == b)
    }

    @Test func multiTokenTargetAccuracyIsFractionOfTokens() {
        let c = TeacherForcedCase(prompt: "X plays", target: "the bass guitar", tokenize: toyTokenize)
        // tokens: X | plays | the | bass | guitar -> input 4, scored 1..<4 (3 target tokens)
        #expect(c.scored == 1..<4)
        var preds = c.labels
        #expect(EditMetrics.tokenAccuracy(predictions: preds, case: c) == 1)
        preds[2] = -1
        #expect(abs(EditMetrics.tokenAccuracy(predictions: preds, case: c) - 2.0 / 3.0) < 1e-12)
        preds[0] = -1  // an unscored position changes nothing
        #expect(abs(EditMetrics.tokenAccuracy(predictions: preds, case: c) - 2.0 / 3.0) < 1e-12)
    }

    @Test func localityCountsUnchangedPredictions() {
        let c = TeacherForcedCase(input: [1, 2, 3, 4], labels: [2, 3, 4, 5], scored: 2..<4)
        #expect(EditMetrics.agreement(before: [9, 9, 7, 8], after: [0, 0, 7, 8], case: c) == 1)
        #expect(EditMetrics.agreement(before: [9, 9, 7, 8], after: [9, 9, 7, 0], case: c) == 0.5)
    }

    @Test func generationExactMatch() {
        #expect(EditMetrics.generationMatches(generated: " Paris, the city", target: "Paris"))
        #expect(EditMetrics.generationMatches(generated: "Paris", target: " Paris"))
        #expect(!EditMetrics.generationMatches(generated: " Lyon", target: "Paris"))
        #expect(!EditMetrics.generationMatches(generated: " Par", target: "Paris"))
        #expect(!EditMetrics.generationMatches(generated: "anything", target: "  "))
        // An answer to a question starts a sentence: the target's first letter may be
        // upper-case, nothing else of it.
        #expect(EditMetrics.generationMatches(generated: " Geometry.", target: "geometry"))
        #expect(!EditMetrics.generationMatches(generated: " GEOMETRY", target: "geometry"))
        #expect(!EditMetrics.generationMatches(generated: " paris", target: "Paris"))
        #expect(EditMetrics.mentions(generated: "It is Jazz.", target: "jazz"))
        #expect(!EditMetrics.mentions(generated: "It is JAZZ.", target: "jazz"))
        #expect(!EditMetrics.mentions(generated: "anything", target: ""))
    }

    @Test func statementJoinsWithOneSpace() {
        #expect(EditSample.statement(prompt: "A is", target: "B") == "A is B")
        #expect(EditSample.statement(prompt: "A is ", target: "B") == "A is B")
        #expect(EditSample.statement(prompt: "A is", target: " B") == "A is B")
    }
}
