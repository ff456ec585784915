// The trained editor at inference time: knowledge statements → (key, continuous prompt),
// queries → query key, and the Knowledge Sentinel. Works on encoder features
// ([pooler, mean, max, min], F floats per text); the encoder itself is the caller's.

public final class RecipeModel: @unchecked Sendable {
    public let parameters: RecipeParameters
    public var config: RecipeConfig { parameters.config }

    public init(parameters: RecipeParameters) {
        self.parameters = parameters
    }

    /// keys [N, R] and prompts [N, P·C] for N knowledge statements' features [N, F].
    public func encodeKnowledge(features: [Float], count N: Int) -> (keys: [Float], prompts: [Float]) {
        guard N > 0 else { return ([], []) }
        let (keys, _) = RecipeNetwork.headForward(parameters, .knowledge, features: features, N: N)
        let (prompts, _) = RecipeNetwork.promptForward(parameters, reps: keys, N: N)
        return (keys, prompts)
    }

    /// Query keys [N, R] for N queries' features [N, F].
    public func encodeQueries(features: [Float], count N: Int) -> [Float] {
        guard N > 0 else { return [] }
        return RecipeNetwork.headForward(parameters, .query, features: features, N: N).reps
    }

    /// The sentinel's key [R] (row 0 of a repository's key matrix).
    public var sentinelKey: [Float] { Array(parameters[.sentinel]) }

    /// The similarity RECIPE ranks by: q·k / √R.
    public var similarityScale: Float { 1 / Float(config.representationWidth).squareRoot() }
}
