// BERT's bidirectional attention kernel: the forward against its Double twin, keeping the
// probabilities changes no output bit, and the backward against its Double twin and
// against central finite differences of the Double forward, over sequences of different
// lengths stacked row-wise.
import Testing
import Kernels

@Suite struct BertAttentionTests {
    /// Offsets [B + 1] of sequences of the given lengths.
    static func offsets(_ lengths: [Int]) -> [Int] {
        var out = [0]
        for t in lengths { out.append(out.last! + t) }
        return out
    }

    @Test(arguments: [[3], [1, 5, 17], [40, 2]])
    func forwardMatchesNaive(lengths: [Int]) {
        let NH = 3, HS = 20, C = NH * HS
        let offsets = Self.offsets(lengths), N = offsets.last!
        let qkv = fill(N * 3 * C, seed: 77).map { $0 * 2 }
        var fast = [Float](repeating: 0, count: N * C), slow = fast, kept = fast
        bertAttentionForward(&fast, qkv, offsets: offsets, NH: NH, HS: HS)
        bertAttentionForwardNaive(&slow, qkv, offsets: offsets, NH: NH, HS: HS)
        let cache = bertAttentionForward(&kept, qkv, offsets: offsets, NH: NH, HS: HS, cache: true)
        let d = maxAbsDiff(fast, slow)
        print("BertAttentionTests \(lengths): forward max |fast − naive| = \(d)")
        #expect(d < 1e-5, "max |fast − naive| = \(d)")
        #expect(kept == fast, "keeping the probabilities changed the output")
        #expect(cache.offsets == offsets)
        #expect(cache.probabilities.count == lengths.reduce(0) { $0 + NH * $1 * $1 })
        // every probability row sums to 1
        var worstSum: Float = 0, at = 0
        for T in lengths { for _ in 0..<(NH * T) {
            worstSum = max(worstSum, abs(cache.probabilities[at..<at + T].reduce(0, +) - 1)); at += T
        } }
        #expect(worstSum < 1e-5, "a probability row sums to 1 ± \(worstSum)")
        // without cache: nothing kept
        #expect(bertAttentionForward(&fast, qkv, offsets: offsets, NH: NH, HS: HS).probabilities.isEmpty)
    }

    @Test(arguments: [[4, 2], [1, 6], [5]])
    func backwardMatchesNaiveAndFiniteDifferences(lengths: [Int]) {
        let NH = 2, HS = 20, C = NH * HS   // HS not a multiple of 16: the SIMD tails run
        let offsets = Self.offsets(lengths), N = offsets.last!
        let qkv = fill(N * 3 * C, seed: 91).map { $0 * 2 }, g = fill(N * C, seed: 92)
        var out = [Float](repeating: 0, count: N * C)
        let cache = bertAttentionForward(&out, qkv, offsets: offsets, NH: NH, HS: HS, cache: true)
        // accumulates: start both from the same non-zero gradient
        let start = fill(N * 3 * C, seed: 93)
        var fast = start, slow = start
        bertAttentionBackward(dqkv: &fast, dout: g, qkv: qkv, cache: cache, NH: NH, HS: HS)
        bertAttentionBackwardNaive(dqkv: &slow, dout: g, qkv: qkv, offsets: offsets, NH: NH, HS: HS)
        let dNaive = maxAbsDiff(fast, slow)
        #expect(dNaive < 1e-5, "max |backward − naive backward| = \(dNaive)")

        // loss = Σ out ⊙ g through the Double forward
        func loss(_ qkv: [Float]) -> Double {
            var o = [Float](repeating: 0, count: N * C)
            bertAttentionForwardNaive(&o, qkv, offsets: offsets, NH: NH, HS: HS)
            return zip(o, g).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }
        var worst = 0.0, worstAbs = 0.0
        for i in 0..<qkv.count {
            let analytic = Double(fast[i] - start[i]), fd = finiteDifference(qkv, i, h: 1e-2, loss)
            worst = max(worst, relativeError(analytic, fd, floor: 1e-2))
            worstAbs = max(worstAbs, abs(analytic - fd))
        }
        print("BertAttentionTests \(lengths): \(qkv.count) coordinates, max rel err vs finite differences = \(worst) (max abs \(worstAbs)), max |fast − naive| = \(dNaive)")
        #expect(worst < 2e-3, "max relative error vs finite differences = \(worst)")
    }

    /// Sequences do not see each other: the gradient of one sequence's output reaches only
    /// its own rows of qkv.
    @Test func sequencesAreIndependent() {
        let NH = 2, HS = 16, C = NH * HS
        let offsets = [0, 3, 7], N = 7
        let qkv = fill(N * 3 * C, seed: 95)
        var out = [Float](repeating: 0, count: N * C)
        let cache = bertAttentionForward(&out, qkv, offsets: offsets, NH: NH, HS: HS, cache: true)
        var g = [Float](repeating: 0, count: N * C)
        for i in 0..<(3 * C) { g[i] = 1 }  // the first sequence's rows only
        var d = [Float](repeating: 0, count: N * 3 * C)
        bertAttentionBackward(dqkv: &d, dout: g, qkv: qkv, cache: cache, NH: NH, HS: HS)
        #expect(d[(3 * 3 * C)...].allSatisfy { $0 == 0 }, "gradient leaked into the second sequence")
        #expect(d[..<(3 * 3 * C)].contains { $0 != 0 })
    }
}
