// The free-generation metrics on hand-made strings whose values are worked out by hand
// (ROME's n-gram entropy: (2/3 H2 + 4/3 H3) / 2, entropies in bits).
import Foundation
import RecipeEvaluation
import Testing

@Suite struct FluencyMetricsTests {
    @Test func wordsSplitLikeNLTK() {
        #expect(FluencyMetrics.words("Montreal, Canada. Montreal,Canada.") == ["Montreal", ",", "Canada", ".", "Montreal", ",", "Canada", "."])
        #expect(FluencyMetrics.words(" don't  well-known U.S. 3.5\n(x)") == ["don't", "well-known", "U.S", ".", "3.5", "(", "x", ")"])
        #expect(FluencyMetrics.words("   ").isEmpty)
    }

    @Test func nGramEntropyHasTheWorkedOutValues() {
        // a b c d: three distinct 2-grams (log2 3 bits), two distinct 3-grams (1 bit).
        #expect(abs(FluencyMetrics.nGramEntropy("a b c d") - (log2(3.0) / 3 + 2.0 / 3)) < 1e-12)
        // a b a b: 2-grams ab ×2, ba ×1 (H = 0.918...), 3-grams aba, bab (1 bit).
        let h2 = -(2.0 / 3 * log2(2.0 / 3) + 1.0 / 3 * log2(1.0 / 3))
        #expect(abs(FluencyMetrics.nGramEntropy("a b a b") - (h2 / 3 + 2.0 / 3)) < 1e-12)
        // A loop of one word has one n-gram of each size: no entropy at all.
        #expect(FluencyMetrics.nGramEntropy("Buddhism Buddhism Buddhism Buddhism") == 0)
        // Fewer words than n: that n contributes 0.
        #expect(FluencyMetrics.nGramEntropy("one") == 0)
        #expect(abs(FluencyMetrics.nGramEntropy("one two") - 0) < 1e-12)
        #expect(abs(FluencyMetrics.fluency(["a b c d", "x x x x"]) - (log2(3.0) / 3 + 2.0 / 3) / 2) < 1e-12)
        #expect(FluencyMetrics.fluency([]) == 0)
        // A varied sentence reads as more fluent than a loop of the same length.
        #expect(FluencyMetrics.nGramEntropy("Buddhism is a religion based on the teachings of the Buddha.")
                > FluencyMetrics.nGramEntropy("Buddhism. Buddhism. Buddhism. Buddhism. Buddhism. Buddhism."))
    }

    @Test func loopsAreThreeOccurrencesOfAWord3Gram() {
        #expect(FluencyMetrics.loops("Buddhism Buddhism Buddhism Buddhism Buddhism"))
        #expect(!FluencyMetrics.loops("Buddhism Buddhism Buddhism Buddhism"), "the 3-gram occurs twice")
        #expect(FluencyMetrics.loops(" Montreal, Canada. Montreal, Canada. Montreal, Canada."))
        #expect(!FluencyMetrics.loops(" Montreal, Canada. Montreal, Canada."))
        #expect(!FluencyMetrics.loops(" Paris, the capital and largest city of France, is on the Seine."))
        #expect(!FluencyMetrics.loops(""))
        #expect(FluencyMetrics.repetition(["a a a a a", "a b c", "x y x y x y x y", "p q"]) == 0.5)
    }
}
