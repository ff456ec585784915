// Fixtures shared by the editor's test targets (RecipeTests, RecipeTrainingTests,
// RecipeEvaluationTests): a tiny editor configuration, seeded values, and the error measure
// of the gradient checks.
import Recipe
import TestSupport

/// Deterministic uniform values in [-a, a] (SplitMix64).
public func uniform(_ n: Int, seed: UInt64, scale a: Float = 1) -> [Float] { SeededRandom.floats(n, seed: seed, scale: a) }

public func smallConfig() -> RecipeConfig {
    var c = RecipeConfig()
    c.featureWidth = 12
    c.representationWidth = 8
    c.promptLength = 2
    c.modelWidth = 5
    c.statementTokens = 4
    return c
}

/// Relative error |a − n| / max(|a| + |n|, floor) between analytic and numeric gradients.
public func relativeError(_ analytic: Float, _ numeric: Float, floor: Float = 1e-3) -> Float {
    abs(analytic - numeric) / max(abs(analytic) + abs(numeric), floor)
}
