// The training attention kernels: the loop forward against the Double reference, and the
// backward against its Double twin and against central finite differences, with grouped
// query heads, the causal mask and a past (Tk > T).
import Testing
import Kernels

/// |a − b| / max(|a|, |b|, floor): relative error that does not blow up on tiny gradients.
func relativeError(_ a: Double, _ b: Double, floor: Double) -> Double {
    abs(a - b) / max(abs(a), abs(b), floor)
}

@Suite struct AttentionGroupsBackwardTests {
    struct Shape: Sendable, CustomStringConvertible {
        let T, Tk, NH, NKV, HS: Int
        var description: String { "T=\(T) Tk=\(Tk) NH=\(NH) NKV=\(NKV) HS=\(HS)" }
    }
    static let shapes = [Shape(T: 5, Tk: 5, NH: 4, NKV: 2, HS: 8),   // causal, GQA
                         Shape(T: 3, Tk: 6, NH: 6, NKV: 2, HS: 16),  // past keys, group of 3
                         Shape(T: 4, Tk: 4, NH: 3, NKV: 3, HS: 20)]  // plain multi-head, HS not a multiple of 16

    @Test(arguments: shapes)
    func groupsForwardMatchesNaive(shape s: Shape) {
        let qStride = s.NH * s.HS + 3, kvStride = s.NKV * s.HS + 5, outStride = s.NH * s.HS + 1
        let q = fill(s.T * qStride, seed: 31), k = fill(s.Tk * kvStride, seed: 32), v = fill(s.Tk * kvStride, seed: 33)
        var fast = [Float](repeating: 0, count: s.T * outStride), slow = fast, blas = fast
        var att = [Float](repeating: 0, count: s.NH * s.T * s.Tk), attBlas = att
        // two calls over disjoint groups, as the workers of a training pass make them
        let half = s.NKV / 2
        attentionForwardGroups(out: &fast, outStride: outStride, att: &att, q: q, qStride: qStride, k: k, v: v, kvStride: kvStride,
                               T: s.T, Tk: s.Tk, NH: s.NH, NKV: s.NKV, HS: s.HS, groups: 0..<half)
        attentionForwardGroups(out: &fast, outStride: outStride, att: &att, q: q, qStride: qStride, k: k, v: v, kvStride: kvStride,
                               T: s.T, Tk: s.Tk, NH: s.NH, NKV: s.NKV, HS: s.HS, groups: half..<s.NKV)
        attentionForwardNaive(out: &slow, outStride: outStride, q: q, qStride: qStride, k: k, v: v, kvStride: kvStride,
                              T: s.T, Tk: s.Tk, NH: s.NH, NKV: s.NKV, HS: s.HS)
        attentionForward(out: &blas, outStride: outStride, att: &attBlas, q: q, qStride: qStride, k: k, v: v, kvStride: kvStride,
                         T: s.T, Tk: s.Tk, NH: s.NH, NKV: s.NKV, HS: s.HS)
        let d = maxAbsDiff(fast, slow), dp = maxAbsDiff(att, attBlas)
        print("AttentionGroupsBackwardTests \(s): forward max |loops − naive| = \(d), max |att loops − att BLAS| = \(dp)")
        #expect(d < 1e-5, "max |loops − naive| = \(d)")
        #expect(dp < 1e-5, "max |att loops − att BLAS| = \(dp)")
    }

    @Test(arguments: shapes)
    func backwardMatchesNaiveAndFiniteDifferences(shape s: Shape) {
        let qStride = s.NH * s.HS + 3, kvStride = s.NKV * s.HS + 5, outStride = s.NH * s.HS + 1
        let q = fill(s.T * qStride, seed: 41).map { $0 * 2 }, k = fill(s.Tk * kvStride, seed: 42).map { $0 * 2 }
        let v = fill(s.Tk * kvStride, seed: 43), g = fill(s.T * outStride, seed: 44)
        var out = [Float](repeating: 0, count: s.T * outStride), att = [Float](repeating: 0, count: s.NH * s.T * s.Tk)
        attentionForwardGroups(out: &out, outStride: outStride, att: &att, q: q, qStride: qStride, k: k, v: v, kvStride: kvStride,
                               T: s.T, Tk: s.Tk, NH: s.NH, NKV: s.NKV, HS: s.HS)
        var dq = [Float](repeating: 0, count: q.count), dk = [Float](repeating: 0, count: k.count), dv = dk
        for gr in 0..<s.NKV {  // group by group, as the workers do
            attentionBackwardGroups(dq: &dq, dk: &dk, dv: &dv, dout: g, outStride: outStride, att: att,
                              q: q, qStride: qStride, k: k, v: v, kvStride: kvStride,
                              T: s.T, Tk: s.Tk, NH: s.NH, NKV: s.NKV, HS: s.HS, groups: gr..<gr + 1)
        }
        var nq = [Float](repeating: 0, count: q.count), nk = [Float](repeating: 0, count: k.count), nv = nk
        attentionBackwardNaive(dq: &nq, dk: &nk, dv: &nv, dout: g, outStride: outStride,
                               q: q, qStride: qStride, k: k, v: v, kvStride: kvStride,
                               T: s.T, Tk: s.Tk, NH: s.NH, NKV: s.NKV, HS: s.HS)
        let dNaive = max(maxAbsDiff(dq, nq), maxAbsDiff(dk, nk), maxAbsDiff(dv, nv))
        #expect(dNaive < 1e-5, "max |backward − naive backward| = \(dNaive)")

        // loss = Σ out ⊙ g through the Double forward
        func loss(_ q: [Float], _ k: [Float], _ v: [Float]) -> Double {
            var o = [Float](repeating: 0, count: s.T * outStride)
            attentionForwardNaive(out: &o, outStride: outStride, q: q, qStride: qStride, k: k, v: v, kvStride: kvStride,
                                  T: s.T, Tk: s.Tk, NH: s.NH, NKV: s.NKV, HS: s.HS)
            var acc = 0.0
            for t in 0..<s.T { for c in 0..<(s.NH * s.HS) { acc += Double(o[t * outStride + c]) * Double(g[t * outStride + c]) } }
            return acc
        }
        var worst = 0.0, worstAbs = 0.0, checked = 0
        func check(_ analytic: Double, _ fd: Double) {
            worst = max(worst, relativeError(analytic, fd, floor: 1e-2))
            worstAbs = max(worstAbs, abs(analytic - fd))
            checked += 1
        }
        for t in 0..<s.T { for c in 0..<(s.NH * s.HS) {
            let i = t * qStride + c
            check(Double(dq[i]), finiteDifference(q, i, h: 1e-2) { loss($0, k, v) })
        } }
        for j in 0..<s.Tk { for c in 0..<(s.NKV * s.HS) {
            let i = j * kvStride + c
            check(Double(dk[i]), finiteDifference(k, i, h: 1e-2) { loss(q, $0, v) })
            check(Double(dv[i]), finiteDifference(v, i, h: 1e-2) { loss(q, k, $0) })
        } }
        // the padding columns between heads' rows get no gradient
        #expect(dq[qStride - 1] == 0 && dk[kvStride - 1] == 0 && dv[kvStride - 1] == 0)
        print("AttentionGroupsBackwardTests \(s): \(checked) coordinates, max rel err vs finite differences = \(worst) (max abs \(worstAbs)), max |fast − naive| = \(dNaive)")
        #expect(worst < 2e-3, "max relative error vs finite differences = \(worst)")
    }

    /// A query never sends gradient to a key after it: with T = Tk, perturbing the output of
    /// row t only moves keys/values 0...t.
    @Test func causalMaskBlocksFutureKeys() {
        let (T, NH, NKV, HS) = (6, 2, 1, 16)
        let q = fill(T * NH * HS, seed: 51), k = fill(T * NKV * HS, seed: 52), v = fill(T * NKV * HS, seed: 53)
        var out = [Float](repeating: 0, count: T * NH * HS), att = [Float](repeating: 0, count: NH * T * T)
        attentionForwardGroups(out: &out, outStride: NH * HS, att: &att, q: q, qStride: NH * HS, k: k, v: v, kvStride: NKV * HS,
                               T: T, Tk: T, NH: NH, NKV: NKV, HS: HS)
        let t0 = 2
        var g = [Float](repeating: 0, count: out.count)
        for c in 0..<(NH * HS) { g[t0 * NH * HS + c] = 1 }
        var dq = [Float](repeating: 0, count: q.count), dk = [Float](repeating: 0, count: k.count), dv = dk
        attentionBackwardGroups(dq: &dq, dk: &dk, dv: &dv, dout: g, outStride: NH * HS, att: att,
                          q: q, qStride: NH * HS, k: k, v: v, kvStride: NKV * HS, T: T, Tk: T, NH: NH, NKV: NKV, HS: HS)
        let future = (t0 + 1)..<T
        let leak = future.flatMap { j in (0..<(NKV * HS)).map { max(abs(dk[j * NKV * HS + $0]), abs(dv[j * NKV * HS + $0])) } }.max()!
        let otherQueries = (0..<T).filter { $0 != t0 }.flatMap { t in (0..<(NH * HS)).map { abs(dq[t * NH * HS + $0]) } }.max()!
        #expect(leak == 0, "gradient leaked to future keys/values: \(leak)")
        #expect(otherQueries == 0, "gradient reached other query rows: \(otherQueries)")
        #expect(dv[0..<((t0 + 1) * NKV * HS)].contains { $0 != 0 })
    }
}
