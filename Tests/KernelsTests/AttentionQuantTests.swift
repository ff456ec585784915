import Testing
import Kernels

@Suite struct AttentionTests {
    /// Prefill of T queries after `past` cached positions, and a single-token decode step.
    @Test(arguments: [(5, 0), (4, 3), (1, 9), (1, 300), (33, 17), (150, 0), (70, 20)])
    func matchesNaive(shape: (Int, Int)) {
        let (T, past) = shape
        let (NH, NKV, HS) = (6, 2, 64)
        let Tk = past + T
        let qStride = NH * HS + 2 * NKV * HS, kvStride = NKV * HS
        let q = fill(T * qStride, seed: 51), k = fill(Tk * kvStride, seed: 52), v = fill(Tk * kvStride, seed: 53)
        var a = [Float](repeating: 0, count: T * NH * HS), b = a
        var att = [Float](repeating: 0, count: NH * T * Tk)
        attentionForward(out: &a, outStride: NH * HS, att: &att, q: q, qStride: qStride, k: k, v: v,
                         kvStride: kvStride, T: T, Tk: Tk, NH: NH, NKV: NKV, HS: HS)
        attentionForwardNaive(out: &b, outStride: NH * HS, q: q, qStride: qStride, k: k, v: v,
                              kvStride: kvStride, T: T, Tk: Tk, NH: NH, NKV: NKV, HS: HS)
        let d = maxAbsDiff(a, b)
        #expect(d < 1e-5, "T=\(T) past=\(past): max |fast - naive| = \(d)")
    }
}

@Suite struct QuantMatvecTests {
    @Test(arguments: QuantFormat.fileFormats)
    func matchesNaive(format: QuantFormat) {
        let (rows, cols) = (333, 576)
        let bytes = randomQuantRows(format, rows: rows, cols: cols, seed: 61)
        let x = fill(cols, seed: 62)
        var a = [Float](repeating: 0, count: rows), b = a
        bytes.withUnsafeBytes { raw in
            let w = QuantMatrix(format: format, rows: rows, cols: cols, data: raw.baseAddress!)
            quantMatvec(&a, w, x)
            quantMatvecNaive(&b, w, x)
        }
        let d = maxAbsDiff(a, b)
        let scale = b.map { abs($0) }.max()!
        #expect(d <= 1e-5 * max(1, scale), "\(format): max |fast - naive| = \(d) (|y| up to \(scale))")
    }

    /// The decode layouts hold exactly the same numbers, and their kernels match the naive twin,
    /// for row lengths that exercise every tail group (32, 64 + 32, 128·k + 64, 128·k + 96).
    @Test(arguments: [(QuantFormat.q4_1, 576), (.q4_0, 608), (.q4_1, 32), (.q4_0, 1536), (.q8_0, 576), (.q8_0, 608), (.q8_0, 32)])
    func packedLayoutMatches(format: QuantFormat, cols: Int) {
        let rows = 37
        let bytes = randomQuantRows(format, rows: rows, cols: cols, seed: 81)
        let x = fill(cols, seed: 82)
        var a = [Float](repeating: 0, count: rows), b = a
        var orig = [Float](repeating: 0, count: cols), packedRow = orig
        var decodeDiff: Float = 0
        bytes.withUnsafeBytes { raw in
            let w = QuantMatrix(format: format, rows: rows, cols: cols, data: raw.baseAddress!)
            let p = w.packedForDecode()
            #expect(p.format == (format == .q8_0 ? .q8Packed : .q4Packed))
            for r in 0..<rows {
                w.dequantizeRow(r, into: &orig)
                p.dequantizeRow(r, into: &packedRow)
                decodeDiff = max(decodeDiff, maxAbsDiff(orig, packedRow))
            }
            quantMatvec(&a, p, x)
            quantMatvecNaive(&b, w, x)
        }
        #expect(decodeDiff == 0, "\(format) cols \(cols): packed rows differ by \(decodeDiff)")
        let d = maxAbsDiff(a, b)
        #expect(d < 1e-4, "\(format) cols \(cols): max |packed kernel - naive| = \(d)")
    }

    @Test func batchedJobsMatchSingle() {
        let cols = 64
        let shapes = [(5, QuantFormat.q4_1), (40, .q8_0), (17, .f16)]
        let mats = shapes.enumerated().map { i, s in randomQuantRows(s.1, rows: s.0, cols: cols, seed: 70 + UInt64(i)) }
        let x = fill(cols, seed: 75)
        var single = shapes.map { [Float](repeating: 0, count: $0.0) }
        var batched = single
        for i in 0..<shapes.count {
            mats[i].withUnsafeBytes { raw in
                let w = QuantMatrix(format: shapes[i].1, rows: shapes[i].0, cols: cols, data: raw.baseAddress!)
                quantMatvecNaive(&single[i], w, x)
            }
        }
        // keep all buffers alive across the one batched call
        let raws = mats.map { m -> UnsafeMutableRawPointer in
            let p = UnsafeMutableRawPointer.allocate(byteCount: m.count, alignment: 64)
            m.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: m.count) }
            return p
        }
        let outs = shapes.map { UnsafeMutablePointer<Float>.allocate(capacity: $0.0) }
        x.withUnsafeBufferPointer { xp in
            let jobs = (0..<shapes.count).map { i in
                QuantMatvecJob(y: outs[i], w: QuantMatrix(format: shapes[i].1, rows: shapes[i].0, cols: cols, data: raws[i]), x: xp.baseAddress!)
            }
            quantMatvec(jobs)
        }
        for i in 0..<shapes.count { batched[i] = Array(UnsafeBufferPointer(start: outs[i], count: shapes[i].0)) }
        raws.forEach { $0.deallocate() }
        outs.forEach { $0.deallocate() }
        let d = zip(single, batched).map { maxAbsDiff($0, $1) }.max()!
        #expect(d < 1e-4, "max |batched - single| = \(d)")
    }

    @Test func dequantizeKnownBlocks() {
        // Q4_1 block: d = 0.5, m = -1; byte j = (j+1)<<4 | j  → element j = 0.5·j − 1, element j+16 = 0.5·((j+1)&15) − 1
        var blk = [UInt8](repeating: 0, count: 20)
        let d = Float16(0.5).bitPattern, m = Float16(-1).bitPattern
        blk[0] = UInt8(d & 0xFF); blk[1] = UInt8(d >> 8); blk[2] = UInt8(m & 0xFF); blk[3] = UInt8(m >> 8)
        for j in 0..<16 { blk[4 + j] = UInt8(((j + 1) & 15) << 4 | j) }
        var out = [Float](repeating: 0, count: 32)
        blk.withUnsafeBytes { QuantFormat.q4_1.dequantizeRow($0.baseAddress!, &out, count: 32) }
        let low: [Float] = (0..<16).map { j in 0.5 * Float(j) - 1 }
        let high: [Float] = (0..<16).map { j in 0.5 * Float((j + 1) & 15) - 1 }
        let expected = low + high
        #expect(out == expected, "\(out)")
    }
}

/// (The attention backward itself is `attentionBackwardGroups`, tested in
/// AttentionGroupsBackwardTests.)
@Suite struct SoftmaxBackwardTests {
    @Test func softmaxBackwardMatchesFiniteDifferences() {
        let n = 7
        let x = fill(n, seed: 95).map { $0 * 3 }, g = fill(n, seed: 96)
        var p = x
        softmaxForward(&p, rows: 1, n: n)
        var dx = [Float](repeating: 0, count: n)
        softmaxBackward(dx: &dx, dp: g, p: p, rows: 1, n: n)
        var worst = 0.0
        for i in 0..<n {
            let fd = finiteDifference(x, i, h: 1e-3) { xx in
                var pp = xx
                softmaxForwardNaive(&pp, rows: 1, n: n)
                return zip(pp, g).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            }
            worst = max(worst, abs(fd - Double(dx[i])))
        }
        #expect(worst < 1e-3, "max |analytic − finite difference| = \(worst)")
    }
}

@Suite struct QuantMatmulTests {
    @Test(arguments: [(QuantFormat.q4_1, 1), (.q4_0, 3), (.q4_1, 9), (.q8_0, 5), (.f16, 6), (.f32, 4), (.q8_0, 17)])
    func matchesNaive(format: QuantFormat, T: Int) {
        let (rows, cols) = (37, 608)
        let bytes = randomQuantRows(format, rows: rows, cols: cols, seed: 101)
        let x = fill(T * cols, seed: 102)
        var a = [Float](repeating: 0, count: T * rows), b = a
        var orig = [Float](repeating: 0, count: cols), fast = orig
        var decodeDiff: Float = 0
        bytes.withUnsafeBytes { raw in
            let w = QuantMatrix(format: format, rows: rows, cols: cols, data: raw.baseAddress!)
            let p = w.packedForDecode()
            for r in 0..<rows {
                w.dequantizeRow(r, into: &orig)
                p.dequantizeRowFast(r, into: &fast)
                decodeDiff = max(decodeDiff, maxAbsDiff(orig, fast))
            }
            quantMatmul(&a, yStride: rows, x, xStride: cols, p, T: T)
            quantMatmulNaive(&b, x, w, T: T)
        }
        #expect(decodeDiff == 0, "\(format): fast row decode differs by \(decodeDiff)")
        let d = maxAbsDiff(a, b)
        #expect(d < 1e-4, "\(format) T=\(T): max |quantMatmul − naive| = \(d)")
    }

    /// The tiles' arithmetic, bit for bit: each output is 16 lanes accumulating w[c + k]·x[c + k]
    /// with one FMA per step, then `treeSum`, then the scalar tail (here C = 600 leaves one of
    /// 8 columns). Every tile width (1, 2, 4 input rows: T = 1 is the matvec) and a partial
    /// quad of weight rows.
    @Test(arguments: [2, 3, 4, 5, 6, 7, 9])
    func tilesSumLaneByLane(T: Int) {
        let (rows, cols) = (37, 600)
        let weights = fill(rows * cols, seed: 103), x = fill(T * cols, seed: 104)
        var y = [Float](repeating: 0, count: T * rows), expected = y
        weights.withUnsafeBytes { raw in
            quantMatmul(&y, yStride: rows, x, xStride: cols, QuantMatrix(format: .f32, rows: rows, cols: cols, data: raw.baseAddress!), T: T)
        }
        for r in 0..<rows {
            for t in 0..<T { expected[t * rows + r] = laneDot(Array(weights[r * cols..<(r + 1) * cols]), Array(x[t * cols..<(t + 1) * cols])) }
        }
        #expect(y.map(\.bitPattern) == expected.map(\.bitPattern))
    }

    private func laneDot(_ w: [Float], _ x: [Float]) -> Float {
        var acc = SIMD16<Float>()
        var c = 0
        while c + 16 <= w.count {
            acc.addProduct(SIMD16(w[c..<c + 16]), SIMD16(x[c..<c + 16]))
            c += 16
        }
        var s = treeSum(acc)
        while c < w.count { s += x[c] * w[c]; c += 1 }
        return s
    }
}

/// The batched matvec of continuous batching: each input's result is bit for bit the single
/// matvec's (`quantMatvec`), for every format and the packed decode layouts with every tail
/// group, whatever the number of inputs.
@Suite struct QuantMatvecBatchTests {
    @Test(arguments: [(QuantFormat.q4_1, 576, true), (.q4_0, 608, true), (.q4_1, 1536, true), (.q4_1, 32, true), (.q8_0, 576, true),
                      (.q8_0, 608, true), (.q8_0, 32, true), (.q4_1, 576, false), (.q8_0, 96, false), (.f16, 80, false),
                      (.bf16, 64, false), (.f32, 48, false)])
    func equalsSingleMatvecBitForBit(format: QuantFormat, cols: Int, packed: Bool) {
        let rows = 45
        let bytes = randomQuantRows(format, rows: rows, cols: cols, seed: 91)
        for B in [1, 2, 4, 5, 7, 33] {
            let xs = fill(B * (cols + 3), seed: 92 + UInt64(B))
            var single = [Float](repeating: 0, count: B * rows), batched = single
            bytes.withUnsafeBytes { raw in
                let plain = QuantMatrix(format: format, rows: rows, cols: cols, data: raw.baseAddress!)
                let w = packed ? plain.packedForDecode() : plain
                xs.withUnsafeBufferPointer { x in
                    single.withUnsafeMutableBufferPointer { y in
                        for b in 0..<B { quantMatvec(y.baseAddress! + b * rows, w, x.baseAddress! + b * (cols + 3)) }
                    }
                    batched.withUnsafeMutableBufferPointer { y in
                        // outputs strided wider than the rows, inputs wider than the columns
                        let out = UnsafeMutablePointer<Float>.allocate(capacity: B * (rows + 7))
                        defer { out.deallocate() }
                        quantMatvecBatch([QuantMatvecBatchJob(y: out, yStride: rows + 7, w: w, x: x.baseAddress!, xStride: cols + 3)], count: B)
                        for b in 0..<B { (y.baseAddress! + b * rows).update(from: out + b * (rows + 7), count: rows) }
                    }
                }
            }
            let differing = zip(single, batched).filter { $0.0.bitPattern != $0.1.bitPattern }.count
            #expect(differing == 0, "\(format) cols \(cols) packed \(packed) B \(B): \(differing) of \(single.count) results differ")
        }
    }
}
