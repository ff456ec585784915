// BERT's input embeddings: word + absolute position + token type (always type 0 here, as
// sentence-transformers feeds a single segment), then LayerNorm.
import Kernels

public struct BertEmbeddings: @unchecked Sendable {  // views into immutable BertParameters
    /// [V, C] embeddings.word_embeddings.weight
    public let word: UnsafePointer<Float>
    /// [P, C] embeddings.position_embeddings.weight
    public let position: UnsafePointer<Float>
    /// [TT, C] embeddings.token_type_embeddings.weight
    public let tokenType: UnsafePointer<Float>
    /// [C] embeddings.LayerNorm.weight
    public let normWeight: UnsafePointer<Float>
    /// [C] embeddings.LayerNorm.bias
    public let normBias: UnsafePointer<Float>
    let C: Int
    let eps: Float

    init(_ b: inout BertTensorBinder, _ config: BertConfig) throws {
        let C = config.hiddenSize
        word = try b.bind("embeddings.word_embeddings.weight", [config.vocabSize, C])
        position = try b.bind("embeddings.position_embeddings.weight", [config.maxPositionEmbeddings, C])
        tokenType = try b.bind("embeddings.token_type_embeddings.weight", [config.typeVocabSize, C])
        normWeight = try b.bind("embeddings.LayerNorm.weight", [C])
        normBias = try b.bind("embeddings.LayerNorm.bias", [C])
        self.C = C
        eps = config.layerNormEps
    }

    static func parameterCount(_ config: BertConfig) -> Int {
        (config.vocabSize + config.maxPositionEmbeddings + config.typeVocabSize + 2) * config.hiddenSize
    }

    /// x[n] = LayerNorm(word[ids[n]] + position[n − offsets[b]] + tokenType[0]) for the
    /// rows n of every sequence b. Ids and lengths are validated by the caller.
    /// - Parameters:
    ///   - x: [N, C] output
    ///   - ids: [N] token ids of all sequences, concatenated
    ///   - offsets: [B + 1] start row of each sequence, then N
    func forward(_ x: UnsafeMutablePointer<Float>, ids: [Int], offsets: [Int]) {
        let N = ids.count
        for b in 0..<(offsets.count - 1) {
            for n in offsets[b]..<offsets[b + 1] {
                let row = x + n * C
                let w = word + ids[n] * C, p = position + (n - offsets[b]) * C
                for c in 0..<C { row[c] = w[c] + p[c] + tokenType[c] }
            }
        }
        layerNormForward(x, x, normWeight, normBias, T: N, C: C, eps: eps)
    }
}
