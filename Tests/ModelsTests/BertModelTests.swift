// all-MiniLM-L6-v2 parity with ../shared/goldens/minilm.json (a float64 numpy forward,
// cross-checked with sentence-transformers): token ids, last hidden states, pooled
// features, normalized embeddings, the cosine matrix; batched equals one-by-one.
// Run in release (`swift test -c release --filter Bert`): the debug build is slow.
import Foundation
import Parallelism
import Testing
import TestSupport
import Models
import Kernels

struct MiniLMGolden: Decodable {
    struct Sentence: Decodable, CustomTestStringConvertible {
        let name: String
        let text: String
        let token_ids: [Int]
        let last_hidden_token0_first16: [Float]
        let last_hidden_last_token_first16: [Float]
        let embedding: [Float]
        let pooler_output: [Float]
        let mean: [Float]
        let max: [Float]
        let min: [Float]
        var testDescription: String { name }
    }
    struct Cosines: Decodable {
        let names: [String]
        let matrix: [[Double]]
    }
    struct Debug: Decodable {
        let sentence: String
        let embeddings_after_layernorm_token0_first16: [Float]
        let layer0_out_token0_first16: [Float]
        let layer0_out_last_token_first16: [Float]
    }
    let sentences: [Sentence]
    let cosine_similarity_matrix: Cosines
    let debug_intermediates: Debug
}

let miniLMGolden = Result { try Fixtures.golden("minilm.json", as: MiniLMGolden.self) }
let miniLMEncoder = Result { try BertEncoder(directory: Fixtures.miniLM) }

/// Largest |a − b|, failing on a length mismatch.
func maxAbsDiff(_ a: some Collection<Float>, _ b: some Collection<Float>) -> Float {
    #expect(a.count == b.count, "lengths \(a.count) vs \(b.count)")
    return zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

func cosine(_ a: [Float], _ b: [Float]) -> Double {
    var ab = 0.0, aa = 0.0, bb = 0.0
    for (x, y) in zip(a, b) { ab += Double(x) * Double(y); aa += Double(x) * Double(x); bb += Double(y) * Double(y) }
    return ab / (aa.squareRoot() * bb.squareRoot())
}

@Suite struct BertModelGoldenTests {
    static let sentences = (try? miniLMGolden.get().sentences) ?? []

    @Test func goldenFileHasAllSentences() throws {
        #expect(try miniLMGolden.get().sentences.count == 11)
    }

    @Test(arguments: sentences)
    func sentence(_ s: MiniLMGolden.Sentence) throws {
        let enc = try miniLMEncoder.get()
        let ids = enc.tokenizer.encode(s.text)
        #expect(ids == s.token_ids)

        let h = try enc.model.forward([ids])
        let C = h.width, T = ids.count
        let first = h.values[0..<16], last = h.values[(T - 1) * C..<(T - 1) * C + 16]
        let dFirst = maxAbsDiff(first, s.last_hidden_token0_first16)
        let dLast = maxAbsDiff(last, s.last_hidden_last_token_first16)
        #expect(dFirst < 1e-4 && dLast < 1e-4, "last hidden: max |Δ| token 0 \(dFirst), last token \(dLast)")

        let f = enc.pooledFeatures(h)[0]
        let parts: [(String, ArraySlice<Float>, [Float])] = [
            ("pooler", f[0..<C], s.pooler_output), ("mean", f[C..<2 * C], s.mean),
            ("max", f[2 * C..<3 * C], s.max), ("min", f[3 * C..<4 * C], s.min),
        ]
        for (name, mine, gold) in parts {
            let d = maxAbsDiff(mine, gold)
            #expect(d < 1e-4, "\(name): max |Δ| = \(d)")
        }
        #expect(enc.features([s.text])[0] == f, "features(text) differs from pooledFeatures(forward)")

        let e = enc.embed([s.text])[0]
        let dE = maxAbsDiff(e, s.embedding), cos = cosine(e, s.embedding)
        #expect(dE < 1e-5, "embedding: max |Δ| = \(dE)")
        #expect(cos >= 0.9999, "embedding: cosine = \(cos)")
        print("[bert golden] \(s.name): T=\(T) hidden \(Swift.max(dFirst, dLast)) pooled \(parts.map { maxAbsDiff($0.1, $0.2) }.max()!) embedding \(dE) cos-1 \(cos - 1)")
    }

    @Test func batchEqualsOneByOne() throws {
        let enc = try miniLMEncoder.get()
        let texts = try miniLMGolden.get().sentences.map(\.text)
        let batched = enc.features(texts)
        var worst: Float = 0
        for (i, t) in texts.enumerated() {
            worst = Swift.max(worst, maxAbsDiff(batched[i], enc.features([t])[0]))
        }
        #expect(worst < 1e-5, "batched vs one-by-one features: max |Δ| = \(worst)")
        // Chunked runs (tiny row budget) give the same features.
        let chunked = try BertEncoder(tokenizer: enc.tokenizer, model: enc.model, maxRowsPerForward: 20).features(texts)
        var worstChunk: Float = 0
        for i in texts.indices { worstChunk = Swift.max(worstChunk, maxAbsDiff(chunked[i], batched[i])) }
        #expect(worstChunk < 1e-5, "chunked vs batched: max |Δ| = \(worstChunk)")
        #expect(enc.featureMatrix(texts) == Array(batched.joined()), "featureMatrix differs from features")
        print("[bert golden] batch vs single max |Δ| \(worst), chunked \(worstChunk)")
    }

    @Test func concurrentCallersGetTheSameFeatures() async throws {
        let enc = try miniLMEncoder.get()
        let texts = BertBenchmark.statements(24)
        let expected = enc.featureMatrix(texts)
        let results = await withTaskGroup(of: [Float].self) { group in
            for _ in 0..<4 { group.addTask { enc.featureMatrix(texts) } }
            return await group.reduce(into: [[Float]]()) { $0.append($1) }
        }
        for r in results { #expect(maxAbsDiff(r, expected) < 1e-5) }
    }

    @Test func cosineMatrix() throws {
        let enc = try miniLMEncoder.get()
        let g = try miniLMGolden.get()
        let byName = Dictionary(uniqueKeysWithValues: g.sentences.map { ($0.name, $0.text) })
        let e = enc.embed(g.cosine_similarity_matrix.names.map { byName[$0]! })
        var worst = 0.0
        for i in e.indices {
            for j in e.indices {
                let dot = zip(e[i], e[j]).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                worst = Swift.max(worst, abs(dot - g.cosine_similarity_matrix.matrix[i][j]))
            }
        }
        #expect(worst < 1e-5, "cosine matrix: max |Δ| = \(worst)")
        print("[bert golden] cosine matrix max |Δ| \(worst)")
    }

    @Test func intermediates() throws {
        let enc = try miniLMEncoder.get()
        let g = try miniLMGolden.get()
        let d = g.debug_intermediates
        let ids = try #require(g.sentences.first { $0.name == d.sentence }).token_ids
        let e = try enc.model.forward([ids], layerCount: 0)
        let l0 = try enc.model.forward([ids], layerCount: 1)
        let C = e.width, T = ids.count
        let diffs = [maxAbsDiff(e.values[0..<16], d.embeddings_after_layernorm_token0_first16),
                     maxAbsDiff(l0.values[0..<16], d.layer0_out_token0_first16),
                     maxAbsDiff(l0.values[(T - 1) * C..<(T - 1) * C + 16], d.layer0_out_last_token_first16)]
        #expect(diffs.max()! < 1e-5, "embeddings, layer 0 token 0, layer 0 last token: max |Δ| \(diffs)")
        #expect(throws: ModelError.self) { try enc.model.forward([ids], layerCount: 7) }
    }

    @Test func invalidInputs() throws {
        let model = try miniLMEncoder.get().model
        #expect(throws: ModelError.self) { try model.forward([[101, 102], []]) }
        #expect(throws: ModelError.self) { try model.forward([[101, 30522, 102]]) }
        #expect(throws: ModelError.self) { try model.forward([[Int](repeating: 1000, count: 513)]) }
        let h = try model.forward([])
        #expect(h.count == 0 && h.values.isEmpty)
        let enc = try miniLMEncoder.get()
        #expect(enc.features([]).isEmpty && enc.featureMatrix([]).isEmpty && enc.embed([]).isEmpty)
        #expect(throws: ModelError.self) { try enc.features(ids: [[101, -1, 102]]) }
        #expect(throws: ModelError.self) { try enc.embed(ids: [[]]) }
        #expect(try enc.featureMatrix(ids: [enc.tokenizer.encode("hi")]) == enc.featureMatrix(["hi"]))
    }
}

/// Throughput, only with RECIPE_BENCH=1 (tests never assert on time):
/// `RECIPE_BENCH=1 swift test -c release --filter BertBenchmarkTests`.
@Suite struct BertBenchmarkTests {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["RECIPE_BENCH"] == "1", "set RECIPE_BENCH=1 to measure"))
    func throughput() throws {
        let enc = try miniLMEncoder.get()
        let before = Threads.count
        defer { Threads.set(before) }
        for threads in [1, 2] {
            for batch in [1, 32, 256] {
                let r = BertBenchmark.run(enc, batchSize: batch, threads: threads, runs: batch == 256 ? 5 : 20)
                #expect(r.maxDifference < 1e-5, "batched vs single: \(r.maxDifference)")
                print("[bert bench] \(r)")
            }
        }
    }
}
