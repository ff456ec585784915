import Testing
import Foundation
import Recipe
import RecipeTestSupport
import RecipeTraining

/// `RecipeConfig.slotConditioning`: off unless a config says so, and wherever it is turned
/// on — at initialization or by converting a trained editor — it starts from exactly the
/// prompts of the structure without it.
@Suite struct SlotConditioningTests {
    /// Statement tokens of 4, 1, 0 and 3 tokens for `smallConfig()`.
    static func statements(_ c: RecipeConfig, seed: UInt64) -> StatementTokens {
        let N = 4, T = c.statementTokens, C = c.modelWidth
        let lengths = [4, 1, 0, 3]
        var e = uniform(N * T * C, seed: seed, scale: 2)
        for i in 0..<N { for t in lengths[i]..<T { for k in 0..<C { e[(i * T + t) * C + k] = 0 } } }
        return StatementTokens(maxTokens: T, width: C, embeddings: e, lengths: lengths)
    }

    static func prompts(_ p: RecipeParameters, features: [Float], statements: StatementTokens) -> [Float] {
        let (r, _) = RecipeNetwork.headForward(p, .knowledge, features: features, N: 4)
        return RecipeNetwork.promptForward(p, reps: r, statements: statements, N: 4).prompts
    }

    static func largestDifference(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        return zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }

    @Test func configWithoutTheFieldDecodesItOff() throws {
        let old = try JSONDecoder().decode(RecipeConfig.self, from: Data(#"{"promptLength": 3, "statementTokens": 16}"#.utf8))
        #expect(!old.slotConditioning)
        #expect(old == RecipeConfig())
        var on = RecipeConfig()
        on.slotConditioning = true
        let back = try JSONDecoder().decode(RecipeConfig.self, from: JSONEncoder().encode(on))
        #expect(back.slotConditioning && back == on)
    }

    @Test func needsStatementTokens() {
        var c = smallConfig()
        c.slotConditioning = true
        c.statementTokens = 0
        #expect(throws: RecipeError.self) { try c.validate() }
    }

    /// Off, the layout is the one every existing checkpoint has: W_q takes no room.
    @Test func offAddsNothingToTheLayout() {
        let c = smallConfig()
        let p = RecipeParameters(config: c)
        #expect(p[.promptQueryW].isEmpty && RecipeTensor.promptQueryW.shape(c) == [0])
        #expect(RecipeTensor.promptValueW.shape(c) == [c.modelWidth, c.modelWidth])
        #expect(RecipeTensor.promptValueB.shape(c) == [c.modelWidth])
        #expect(p.range(.promptQueryW).lowerBound == p.count, "W_q sits after every older tensor")
        #expect(RecipeTensor.promptQueryW.isPromptTransformer && RecipeTensor.promptQueryW.name == "prompt.attention.query.w")
    }

    /// The initializer gives the same prompts with and without slot conditioning (same seed).
    @Test func initializationComputesTheSharedAttention() throws {
        let shared = smallConfig()
        var slots = shared
        slots.slotConditioning = true
        let a = RecipeParameters(config: shared), b = RecipeParameters(config: slots)
        RecipeInitializer.initialize(a, seed: 4)
        RecipeInitializer.initialize(b, seed: 4)
        #expect(b[.promptQueryW].allSatisfy { $0 == 0 })
        let f = uniform(4 * shared.featureWidth, seed: 41), st = Self.statements(shared, seed: 42)
        let diff = Self.largestDifference(Self.prompts(a, features: f, statements: st), Self.prompts(b, features: f, statements: st))
        #expect(diff <= 1e-6, "largest prompt difference \(diff)")
    }

    /// A trained (here: random) editor converted to slot conditioning gives the same prompts,
    /// and every tensor it had is carried over by name.
    @Test func convertedEditorGivesTheSamePrompts() throws {
        let c = smallConfig()
        let before = try RecipeParameters(config: c, values: uniform(RecipeParameters(config: c).count, seed: 43, scale: 0.5))
        var target = c
        target.slotConditioning = true
        target.promptLearningRate = 3e-4  // hyper-parameters are the new run's
        let after = try before.converted(to: target)
        #expect(after.config == target)
        for t in RecipeTensor.allCases where t != .promptValueW && t != .promptValueB && t != .promptQueryW {
            #expect(Array(after[t]) == Array(before[t]), "\(t.name) not copied")
        }
        #expect(after[.promptQueryW].allSatisfy { $0 == 0 })
        let f = uniform(4 * c.featureWidth, seed: 44), st = Self.statements(c, seed: 45)
        let old = Self.prompts(before, features: f, statements: st), new = Self.prompts(after, features: f, statements: st)
        let diff = Self.largestDifference(old, new)
        print("converted editor: largest prompt difference \(diff) (prompts up to \(old.map(abs).max()!))")
        #expect(diff <= 1e-5, "largest prompt difference \(diff)")

        // Converting again is a copy; the other way, or to another network, is refused.
        #expect(try after.converted(to: target).values == after.values)
        #expect(throws: RecipeError.self) { try after.converted(to: c) }
        var wider = target
        wider.representationWidth = 16
        #expect(throws: RecipeError.self) { try before.converted(to: wider) }
    }
}
