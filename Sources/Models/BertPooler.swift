// BERT's pooler: pooler_output = tanh(W · h[CLS] + b), on the first row of each sequence.
import Foundation
import Kernels

public struct BertPooler: @unchecked Sendable {  // views into immutable BertParameters
    /// [C, C] pooler.dense.weight
    public let weight: UnsafePointer<Float>
    /// [C] pooler.dense.bias
    public let bias: UnsafePointer<Float>
    let C: Int

    init(_ b: inout BertTensorBinder, _ config: BertConfig) throws {
        let C = config.hiddenSize
        weight = try b.bind("pooler.dense.weight", [C, C])
        bias = try b.bind("pooler.dense.bias", [C])
        self.C = C
    }

    static func parameterCount(_ config: BertConfig) -> Int { config.hiddenSize * (config.hiddenSize + 1) }

    /// out[b] = tanh(W · x[cls[b]] + bias).
    /// - Parameters:
    ///   - out: [B, C] pooler outputs
    ///   - x: [N, C] last hidden states of the stacked batch
    ///   - offsets: [B + 1] start row ([CLS]) of each sequence, then N
    public func forward(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, offsets: [Int]) {
        let B = offsets.count - 1
        let cls = UnsafeMutablePointer<Float>.allocate(capacity: max(B * C, 1))
        defer { cls.deallocate() }
        for b in 0..<B { (cls + b * C).update(from: x + offsets[b] * C, count: C) }
        matmulForward(out, cls, weight, bias, T: B, C: C, OC: C)
        for i in 0..<(B * C) { out[i] = tanhf(out[i]) }
    }
}
