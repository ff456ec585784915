// RECIPE's knowledge encoder: WordPiece + BERT (all-MiniLM-L6-v2) + pooling.
//
// `features` gives, per text, the 4·C = 1536 values [pooler(CLS), mean, max, min] that
// RECIPE's knowledge and query heads read: pooler = tanh(W·h[CLS] + b), and mean, max,
// min element-wise over ALL tokens of the last hidden state, [CLS] and [SEP] included
// (what ../shared/goldens/minilm.json stores). `embed` is the sentence-transformers
// embedding: the mean over all tokens, L2-normalized.
//
// Texts are tokenized (truncated to 256 tokens, never padded), then run in chunks of
// at most `maxRowsPerForward` stacked tokens, so a large batch needs bounded memory
// while each chunk's dense layers stay single large sgemms.
import Foundation
import Kernels
import Tokenizers

public final class BertEncoder: Sendable {
    public let tokenizer: WordPieceTokenizer
    public let model: BertModel
    /// Tokens per text including [CLS] and [SEP] (sentence-transformers' max_seq_length).
    public let maxLength: Int
    /// Upper bound on N (stacked tokens) per forward; a single text may exceed it.
    public let maxRowsPerForward: Int

    /// C: width of the hidden states and of each pooled block.
    public var width: Int { model.config.hiddenSize }
    /// 4·C: length of a `features` vector.
    public var featureCount: Int { 4 * width }

    /// Loads vocab.txt, config.json and model.safetensors from a model directory
    /// (`ModelPaths.encoder` for the default all-MiniLM-L6-v2).
    public convenience init(directory: URL, maxLength: Int = WordPieceTokenizer.defaultMaxLength) throws {
        let vocab = try ModelPaths.require(directory.appendingPathComponent("vocab.txt"))
        try self.init(tokenizer: WordPieceTokenizer(vocabulary: vocab), model: BertModel(directory: directory), maxLength: maxLength)
    }

    /// Pairs a tokenizer with a model. Throws `ModelError.badMetadata` when the vocabulary
    /// does not fit the embedding table or `maxLength` exceeds the position table.
    public init(tokenizer: WordPieceTokenizer, model: BertModel, maxLength: Int = WordPieceTokenizer.defaultMaxLength,
                maxRowsPerForward: Int = 4096) throws {
        guard tokenizer.count <= model.config.vocabSize else {
            throw ModelError.badMetadata(file: model.path, key: "vocab_size", expected: "≥ \(tokenizer.count) (vocab.txt entries)",
                                         actual: "\(model.config.vocabSize)")
        }
        guard maxLength >= 2, maxLength <= model.config.maxPositionEmbeddings else {
            throw ModelError.invalidInput("maxLength \(maxLength) must be in 2...\(model.config.maxPositionEmbeddings)")
        }
        self.tokenizer = tokenizer
        self.model = model
        self.maxLength = maxLength
        self.maxRowsPerForward = max(1, maxRowsPerForward)
    }

    /// [pooler, mean, max, min] (4·C values) for each text.
    public func features(_ texts: [String]) -> [[Float]] {
        split(matrix(ids: encode(texts)), texts.count)
    }

    /// The same features as one row-major [B, 4·C] matrix (what a Linear head takes).
    public func featureMatrix(_ texts: [String]) -> [Float] {
        matrix(ids: encode(texts))
    }

    /// Mean over all tokens, L2-normalized (C values), for each text.
    public func embed(_ texts: [String]) -> [[Float]] {
        embeddings(ids: encode(texts))
    }

    /// `features` for token sequences (e.g. from `tokenizer.encode`); throws
    /// `ModelError.invalidInput` for an empty or too long sequence or an unknown id.
    public func features(ids: [[Int]]) throws -> [[Float]] {
        try model.validate(ids)
        return split(matrix(ids: ids), ids.count)
    }

    /// `featureMatrix` for token sequences; throws like `features(ids:)`.
    public func featureMatrix(ids: [[Int]]) throws -> [Float] {
        try model.validate(ids)
        return matrix(ids: ids)
    }

    /// `embed` for token sequences; throws like `features(ids:)`.
    public func embed(ids: [[Int]]) throws -> [[Float]] {
        try model.validate(ids)
        return embeddings(ids: ids)
    }

    /// Token ids of each text: [CLS] … [SEP], at most `maxLength` (valid for the model,
    /// which `init` checked).
    func encode(_ texts: [String]) -> [[Int]] {
        texts.map { tokenizer.encode($0, maxLength: maxLength) }
    }

    func split(_ m: [Float], _ B: Int) -> [[Float]] {
        let F = featureCount
        return (0..<B).map { Array(m[$0 * F..<($0 + 1) * F]) }
    }

    /// [B, 4·C] features of valid sequences.
    func matrix(ids: [[Int]]) -> [Float] {
        var out = [Float](repeating: 0, count: ids.count * featureCount)
        out.withUnsafeMutableBufferPointer { o in
            for chunk in chunks(ids) {
                let h = model.forwardValidated(Array(ids[chunk]))
                pool(h, into: o.baseAddress! + chunk.lowerBound * featureCount)
            }
        }
        return out
    }

    /// Normalized mean embeddings of valid sequences.
    func embeddings(ids: [[Int]]) -> [[Float]] {
        var out: [[Float]] = []
        out.reserveCapacity(ids.count)
        for chunk in chunks(ids) {
            let h = model.forwardValidated(Array(ids[chunk]))
            for b in 0..<h.count {
                var m = Self.mean(h, b)
                let norm = m.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
                let inv = Float(1 / max(norm, 1e-12))
                for c in m.indices { m[c] *= inv }
                out.append(m)
            }
        }
        return out
    }

    /// [pooler, mean, max, min] of each sequence of a forward's output.
    public func pooledFeatures(_ h: BertHiddenStates) -> [[Float]] {
        let F = featureCount
        var m = [Float](repeating: 0, count: h.count * F)
        m.withUnsafeMutableBufferPointer { pool(h, into: $0.baseAddress!) }
        return (0..<h.count).map { Array(m[$0 * F..<($0 + 1) * F]) }
    }

    /// Backward of `pooledFeatures` with the pooler's weights frozen: d h [N, C] from
    /// d features [B, 4·C], given the forward's features [B, 4·C]. The pooler: dz = d pooler ⊙ (1 − pooler²), d h[CLS] += Wᵀ dz;
    /// the mean spreads its gradient over the sequence's rows, max and min route theirs to
    /// the row that attained them.
    public func pooledFeaturesBackward(_ h: BertHiddenStates, features: [Float], dFeatures: [Float]) -> [Float] {
        let B = h.count, C = h.width, F = 4 * C
        precondition(dFeatures.count == B * F && features.count == B * F,
                     "pooledFeaturesBackward: \(features.count) features and \(dFeatures.count) gradients for \(B) sequences")
        var dh = [Float](repeating: 0, count: h.values.count)
        var dz = [Float](repeating: 0, count: B * C)
        for b in 0..<B {
            for c in 0..<C {
                let p = features[b * F + c]
                dz[b * C + c] = dFeatures[b * F + c] * (1 - p * p)
            }
        }
        var dCLS = [Float](repeating: 0, count: B * C)
        matmulBackwardInput(dx: &dCLS, dy: dz, w: model.pooler.weight, T: B, C: C, OC: C)
        for b in 0..<B {
            let start = h.offsets[b], T = h.offsets[b + 1] - start
            for c in 0..<C {
                dh[start * C + c] += dCLS[b * C + c]
                var arg = (max: start, min: start)
                for t in start..<(start + T) {
                    let v = h.values[t * C + c]
                    if v > h.values[arg.max * C + c] { arg.max = t }
                    if v < h.values[arg.min * C + c] { arg.min = t }
                    dh[t * C + c] += dFeatures[b * F + C + c] / Float(T)
                }
                dh[arg.max * C + c] += dFeatures[b * F + 2 * C + c]
                dh[arg.min * C + c] += dFeatures[b * F + 3 * C + c]
            }
        }
        return dh
    }

    /// The hidden states of each text after the first `layers` layers (all of them: the last
    /// hidden states `features` pools), in chunks of at most `maxRowsPerForward` rows.
    public func hiddenStates(_ texts: [String], layers: Int) -> BertHiddenStates {
        precondition((0...model.layers.count).contains(layers), "hiddenStates: \(layers) layers of \(model.layers.count)")
        let ids = encode(texts)
        var values: [Float] = [], offsets = [0]
        for chunk in chunks(ids) {
            let h = model.forwardValidated(Array(ids[chunk]), layerCount: layers)
            values += h.values
            for b in 0..<h.count { offsets.append(offsets.last! + h.offsets[b + 1] - h.offsets[b]) }
        }
        return BertHiddenStates(values: values, offsets: offsets, width: width)
    }

    /// Writes [pooler, mean, max, min] of each sequence.
    /// - Parameters:
    ///   - h: the forward's output, B sequences of [T_b, C]
    ///   - out: [B, 4C] features
    func pool(_ h: BertHiddenStates, into out: UnsafeMutablePointer<Float>) {
        let B = h.count, C = h.width, F = 4 * C
        if B == 0 { return }
        var pooled = [Float](repeating: 0, count: B * C)
        h.values.withUnsafeBufferPointer { x in
            pooled.withUnsafeMutableBufferPointer { p in
                model.pooler.forward(p.baseAddress!, x.baseAddress!, offsets: h.offsets)
            }
            for b in 0..<B {
                let f = out + b * F
                let T = h.offsets[b + 1] - h.offsets[b]
                let rows = x.baseAddress! + h.offsets[b] * C
                for c in 0..<C {
                    f[c] = pooled[b * C + c]
                    f[C + c] = rows[c]; f[2 * C + c] = rows[c]; f[3 * C + c] = rows[c]
                }
                for t in 1..<max(T, 1) {
                    let r = rows + t * C
                    for c in 0..<C {
                        f[C + c] += r[c]
                        f[2 * C + c] = max(f[2 * C + c], r[c])
                        f[3 * C + c] = min(f[3 * C + c], r[c])
                    }
                }
                let inv = 1 / Float(T)
                for c in 0..<C { f[C + c] *= inv }
            }
        }
    }

    /// Element-wise mean over the rows of sequence `b`.
    static func mean(_ h: BertHiddenStates, _ b: Int) -> [Float] {
        let C = h.width, T = h.offsets[b + 1] - h.offsets[b]
        var m = [Float](repeating: 0, count: C)
        let rows = h.sequence(b)
        var i = rows.startIndex
        for _ in 0..<T { for c in 0..<C { m[c] += rows[i + c] }; i += C }
        for c in 0..<C { m[c] /= Float(T) }
        return m
    }

    /// Consecutive ranges of `ids` holding at most `maxRowsPerForward` tokens (at least
    /// one sequence each).
    func chunks(_ ids: [[Int]]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var start = 0, rows = 0
        for (i, seq) in ids.enumerated() {
            if rows > 0 && rows + seq.count > maxRowsPerForward {
                out.append(start..<i)
                start = i; rows = 0
            }
            rows += seq.count
        }
        if start < ids.count { out.append(start..<ids.count) }
        return out
    }
}
