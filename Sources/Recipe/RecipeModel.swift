// The trained editor at inference time: knowledge statements → (key, continuous prompt),
// queries → query key, and the Knowledge Sentinel. Works on encoder features
// ([pooler, mean, max, min], F floats per text; the encoder itself is the caller's) and, for
// prompts, on the statements' LLM token embeddings (from `llm`).
import Models

public final class RecipeModel: @unchecked Sendable {
    public let parameters: RecipeParameters
    /// The LLM whose input embeddings the prompt transformer attends over; needed for prompts
    /// when `config.statementTokens` > 0, not for keys or queries.
    public let llm: LanguageModel?
    public var config: RecipeConfig { parameters.config }
    /// The embedding row of `config.leadingToken` ([C]; empty without one).
    private let leadingRow: [Float]

    /// Throws when the config names a leading token that `llm` does not have. Without an LLM
    /// the model gives keys and queries only.
    public init(parameters: RecipeParameters, llm: LanguageModel? = nil) throws {
        self.parameters = parameters
        self.llm = llm
        leadingRow = try parameters.config.leadingToken.flatMap { t in try llm.map { try $0.llama.embeddingRows(of: [t]) } } ?? []
    }

    /// What goes in front of a query's token embeddings for a fact's prompt [P, C]: the
    /// leading token's embedding, when the config has one, then the prompt.
    public func prefix(_ prompt: [Float]) -> [Float] {
        precondition(config.leadingToken == nil || !leadingRow.isEmpty, "RecipeModel.prefix needs the LLM (the editor has a leading token)")
        return leadingRow.isEmpty ? prompt : leadingRow + prompt
    }

    /// keys [N, R] and prompts [N, P·C] for N knowledge statements and their features [N, F].
    public func encodeKnowledge(statements: [String], features: [Float]) throws -> (keys: [Float], prompts: [Float]) {
        let N = statements.count
        guard N > 0 else { return ([], []) }
        var tokens: StatementTokens?
        if config.statementTokens > 0 {
            guard let llm else {
                throw RecipeError.invalidArgument("this editor's prompts attend over the LLM's token embeddings: load the LLM")
            }
            guard llm.llama.config.embeddingLength == config.modelWidth else {
                throw RecipeError.invalidArgument("the LLM is \(llm.llama.config.embeddingLength) wide, the editor expects \(config.modelWidth)")
            }
            tokens = try llm.statementTokens(statements, maxTokens: config.statementTokens)
        }
        let keys = encodeKeys(features: features, count: N)
        let (prompts, _) = RecipeNetwork.promptForward(parameters, reps: keys, statements: tokens, N: N)
        return (keys, prompts)
    }

    /// Knowledge keys [N, R] alone for N statements' features [N, F].
    public func encodeKeys(features: [Float], count N: Int) -> [Float] {
        guard N > 0 else { return [] }
        return RecipeNetwork.headForward(parameters, .knowledge, features: features, N: N).reps
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
