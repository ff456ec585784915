// The LLM side of a knowledge statement: the input embeddings of its last tokens, which the
// prompt transformer's attention pools into the continuous prompt (`RecipeNetwork`).
//
// Why: the knowledge representation r(k) is trained for retrieval, and queries never
// contain the new target, so r(k) keeps little of the one thing a prompt must carry. Pooling
// the statement's own token embeddings gives every prompt vector a direct path to the target
// words in the LLM's native input space; the residual MLP on r(k) still adds the rest.
//
// Layout: embeddings [N, T, C], row t of statement i at (i·T + t)·C, holding its last
// `lengths[i]` ≤ T tokens in order; rows past the length are zero.
import Models

public struct StatementTokens: Sendable {
    /// T: the most tokens kept per statement (from its end).
    public let maxTokens: Int
    /// C: the LLM's embedding width.
    public let width: Int
    public var embeddings: [Float]
    public var lengths: [Int]

    public var count: Int { lengths.count }

    public init(maxTokens: Int, width: Int, embeddings: [Float], lengths: [Int]) {
        precondition(embeddings.count == lengths.count * maxTokens * width, "statement token layout")
        self.maxTokens = maxTokens
        self.width = width
        self.embeddings = embeddings
        self.lengths = lengths
    }

    /// Statements `range` of this batch.
    public func slice(_ range: Range<Int>) -> StatementTokens {
        let row = maxTokens * width
        return StatementTokens(maxTokens: maxTokens, width: width,
                               embeddings: Array(embeddings[(range.lowerBound * row)..<(range.upperBound * row)]),
                               lengths: Array(lengths[range]))
    }
}

extension LanguageModel {
    /// The last ≤ `maxTokens` tokens of each statement (tokenized as text, no special tokens),
    /// as the LLM's input embedding rows.
    public func statementTokens(_ statements: [String], maxTokens T: Int) throws -> StatementTokens {
        let C = llama.config.embeddingLength
        var embeddings = [Float](repeating: 0, count: statements.count * T * C)
        var lengths: [Int] = []
        for (i, s) in statements.enumerated() {
            let ids = Array(tokenizer.encode(s).suffix(T))
            if !ids.isEmpty {
                let rows = try llama.embeddingRows(of: ids)
                for j in rows.indices { embeddings[i * T * C + j] = rows[j] }
            }
            lengths.append(ids.count)
        }
        return StatementTokens(maxTokens: T, width: C, embeddings: embeddings, lengths: lengths)
    }
}
