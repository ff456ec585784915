// The trainable BERT layer (`BertTrainableLayer`) and the pooling's backward
// (`BertEncoder.pooledFeaturesBackward`): against finite differences on a small random layer
// and on the real MiniLM's pooler, and, with MiniLM's last layer copied in, the same hidden
// states as the inference forward.
import Foundation
import Testing
import TestSupport
import Models
import Kernels

@Suite struct BertTrainingTests {
    static func random(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] { SeededRandom.floats(n, seed: seed, scale: scale) }

    /// L = Σ w ⊙ y over two sequences (4 and 2 tokens) of a layer with C = 8, 2 heads, FF = 16
    /// and random weights (LayerNorm scales near 1): every weight's gradient against central
    /// differences.
    @Test func layerGradientsMatchFiniteDifferences() {
        var config = BertConfig()
        config.hiddenSize = 8; config.numAttentionHeads = 2; config.intermediateSize = 16; config.layerNormEps = 1e-5
        let layer = BertTrainableLayer(config: config)
        let shape = layer.shape
        var weights = Self.random(shape.count, seed: 3, scale: 0.5)
        let views = shape.offsets
        for norm in [4, 10] { for c in 0..<8 { weights[views[norm] + c] = 1 + 0.2 * weights[views[norm] + c] } }
        let offsets = [0, 4, 6]
        let x = Self.random(6 * 8, seed: 4, scale: 1.5)
        let w = Self.random(6 * 8, seed: 5)
        weights.withUnsafeMutableBufferPointer { wp in
            let base = wp.baseAddress!
            func loss() -> Double {
                zip(layer.forward(base, x: x, offsets: offsets).y, w).reduce(0) { $0 + Double($1.0 * $1.1) }
            }
            var grads = [Float](repeating: 0, count: shape.count)
            let (_, cache) = layer.forward(base, x: x, offsets: offsets)
            grads.withUnsafeMutableBufferPointer { layer.backward(base, grads: $0.baseAddress!, dy: w, cache: cache) }
            let names = ["qkv.w", "qkv.b", "out.w", "out.b", "norm1.w", "norm1.b", "inter.w", "inter.b", "output.w", "output.b",
                         "norm2.w", "norm2.b"]
            var worst: [String] = []
            var largest: Float = 0
            let step: Float = 1e-2
            for (t, name) in names.enumerated() {
                var e: Float = 0
                for i in views[t]..<(views[t] + shape.sizes[t]) {
                    let old = base[i]
                    base[i] = old + step; let lp = loss()
                    base[i] = old - step; let lm = loss()
                    base[i] = old
                    let numeric = Float((lp - lm) / Double(2 * step))
                    e = max(e, abs(grads[i] - numeric) / max(abs(grads[i]) + abs(numeric), 1e-2))
                }
                worst.append("\(name) \(e)")
                largest = max(largest, e)
                #expect(grads[views[t]..<(views[t] + shape.sizes[t])].contains { $0 != 0 }, "\(name) gets no gradient")
            }
            print("BERT layer: largest relative gradient error \(largest); " + worst.joined(separator: ", "))
            #expect(largest < 2e-2, "largest relative gradient error \(largest)")
        }
    }

    /// MiniLM's last layer copied into a weight block gives the model's own last hidden
    /// states from the states below it.
    @Test func copiedLastLayerReproducesTheModel() throws {
        let encoder = try miniLMEncoder.get()
        let texts = ["Toko Yasuda, the piano", "What does Toko Yasuda play? They play", "x"]
        let lower = encoder.hiddenStates(texts, layers: 5), full = encoder.hiddenStates(texts, layers: 6)
        let layer = BertTrainableLayer(config: encoder.model.config)
        var weights = [Float](repeating: 0, count: layer.shape.count)
        weights.withUnsafeMutableBufferPointer { encoder.model.layers[5].copyWeights(into: $0.baseAddress!) }
        let y = weights.withUnsafeMutableBufferPointer { layer.forward($0.baseAddress!, x: lower.values, offsets: lower.offsets).y }
        #expect(lower.offsets == full.offsets)
        let diff = zip(y, full.values).map { abs($0 - $1) }.max()!
        print("copied last layer vs the model: max |Δ| \(diff)")
        #expect(diff < 1e-4)
        // And the features pooled from them are the encoder's.
        let pooled = encoder.pooledFeatures(BertHiddenStates(values: y, offsets: lower.offsets, width: lower.width)).flatMap { $0 }
        let reference = encoder.featureMatrix(texts)
        #expect(zip(pooled, reference).map { abs($0 - $1) }.max()! < 1e-4)
    }

    /// The trainable layer runs the model's own layer forward: with MiniLM's last layer
    /// copied in and more rows than the packed few-row path takes (so both multiply with
    /// sgemm), its hidden states are the model's bit for bit.
    @Test func trainableLayerRunsTheModelsForward() throws {
        let encoder = try miniLMEncoder.get()
        let texts = ["Toko Yasuda, the piano", "What does Toko Yasuda play? They play the piano and the guitar", "x"]
        let lower = encoder.hiddenStates(texts, layers: 5), full = encoder.hiddenStates(texts, layers: 6)
        #expect(lower.offsets.last! > matmulFewRowsLimit)
        let layer = BertTrainableLayer(config: encoder.model.config)
        var weights = [Float](repeating: 0, count: layer.shape.count)
        weights.withUnsafeMutableBufferPointer { encoder.model.layers[5].copyWeights(into: $0.baseAddress!) }
        let y = weights.withUnsafeMutableBufferPointer { layer.forward($0.baseAddress!, x: lower.values, offsets: lower.offsets).y }
        #expect(y.map(\.bitPattern) == full.values.map(\.bitPattern), "the trainable layer's forward differs from the model's")
    }

    /// L = Σ w ⊙ pooled features (pooler, mean, max, min) of two random sequences of MiniLM
    /// width through MiniLM's pooler: the gradient of sampled hidden-state entries against
    /// central differences (max and min route to one row, so steps stay below the gaps).
    @Test func poolingGradientsMatchFiniteDifferences() throws {
        let encoder = try miniLMEncoder.get()
        let C = encoder.width, offsets = [0, 3, 5]
        var values = Self.random(5 * C, seed: 7, scale: 0.8)
        let w = Self.random(2 * 4 * C, seed: 8)
        func loss(_ v: [Float]) -> Double {
            let f = encoder.pooledFeatures(BertHiddenStates(values: v, offsets: offsets, width: C)).flatMap { $0 }
            return zip(f, w).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }
        let h = BertHiddenStates(values: values, offsets: offsets, width: C)
        let dh = encoder.pooledFeaturesBackward(h, features: encoder.pooledFeatures(h).flatMap { $0 }, dFeatures: w)
        var largest: Float = 0
        let step: Float = 1e-3
        for i in stride(from: 0, to: values.count, by: 7) {
            let old = values[i]
            values[i] = old + step; let lp = loss(values)
            values[i] = old - step; let lm = loss(values)
            values[i] = old
            let numeric = Float((lp - lm) / Double(2 * step))
            largest = max(largest, abs(dh[i] - numeric) / max(abs(dh[i]) + abs(numeric), 1e-2))
        }
        print("pooling: largest relative gradient error \(largest)")
        #expect(largest < 2e-2)
    }
}
