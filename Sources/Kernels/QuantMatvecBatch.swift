// Y[b] = W·x_b for B input vectors with W streamed from memory once: the decode step of
// several sequences at once (continuous batching in the worker). Decode is memory-bound:
// one token reads every weight (~80 MB for SmolLM2 at Q4_1), so B tokens that share the
// read cost little more than one until the arithmetic catches up.
//
// Every (row, input) dot product has the arithmetic `quantMatvec` gives it (the same
// operations lane by lane, in the same order, with the same block sums of x), so each result
// is bit for bit what the input would get alone: a sequence decoded in a batch gives the
// tokens it gives by itself, whatever it is batched with. The packed formats decode two
// weight rows into L1 and pass three inputs at a time over them; the others take a few rows
// at a time through the single matvec's code.
import Parallelism

/// One matrix of a `quantMatvecBatch` call, applied to B input rows.
public struct QuantMatvecBatchJob: @unchecked Sendable {
    /// [B, yStride] outputs: input b's result, [rows], at y + b·yStride
    public let y: UnsafeMutablePointer<Float>
    public let yStride: Int
    /// [rows, cols]
    public let w: QuantMatrix
    /// [B, xStride] inputs: input b, [cols], at x + b·xStride
    public let x: UnsafePointer<Float>
    public let xStride: Int

    public init(y: UnsafeMutablePointer<Float>, yStride: Int, w: QuantMatrix, x: UnsafePointer<Float>, xStride: Int) {
        (self.y, self.yStride, self.w, self.x, self.xStride) = (y, yStride, w, x, xStride)
    }
}

/// Weight rows per inner tile: small enough that the tile stays in L1 while B inputs pass
/// (16 rows of 1536 Q4 columns are 15 KiB), large enough to amortize the loop over inputs.
let quantMatvecBatchTileRows = 16

/// y_b = W·x_b for every job and every b < B, in one parallel dispatch (the rows of all jobs
/// are concatenated and split across threads, as `quantMatvec` splits them).
/// - Parameters:
///   - jobs: the matrices, each with its B inputs and outputs
///   - B: inputs per job (≥ 1)
public func quantMatvecBatch(_ jobs: [QuantMatvecBatchJob], count B: Int) {
    guard B > 0, !jobs.isEmpty else { return }
    // block sums of each input of each job, as `quantMatvec` computes them (Q4 formats; none
    // for the others): job j's input b at blockSums + sumOffsets[j] + b·nb_j
    var offsets: [Int] = [0], sumOffsets: [Int] = []
    var maxCols = 0, sumCount = 0
    for j in jobs {
        offsets.append(offsets.last! + j.w.rows)
        sumOffsets.append(sumCount)
        sumCount += B * j.w.cols / 32
        maxCols = max(maxCols, j.w.cols)
    }
    let blockSums = UnsafeMutablePointer<Float>.allocate(capacity: max(1, sumCount))
    defer { blockSums.deallocate() }
    for (ji, j) in jobs.enumerated() {
        for b in 0..<B {
            let s = quantBlockSums(j.w, j.x + b * j.xStride)
            (blockSums + sumOffsets[ji] + b * j.w.cols / 32).update(from: s, count: s.count)
        }
    }
    let total = offsets.last!
    let box = UnsafeSendable((jobs, offsets, sumOffsets, blockSums))
    let (pieces, step) = quantMatvecSplit(rows: total)
    parallelFor(pieces) { piece in
        let (jobs, offsets, sumOffsets, blockSums) = box.value
        // per weight row of a pair: [cols] decoded values, [nb + 16] scales, [nb + 16] minimums
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 2 * (maxCols + 2 * (maxCols / 32 + 16)))
        defer { scratch.deallocate() }
        let lo = piece * step, hi = min(total, lo + step)
        for (ji, job) in jobs.enumerated() {
            let a = max(lo, offsets[ji]) - offsets[ji], b = min(hi, offsets[ji + 1]) - offsets[ji]
            if a >= b { continue }
            let w = job.w, nb = w.cols / 32
            let xsums = UnsafePointer(blockSums + sumOffsets[ji])  // input i's at xsums + i·nb
            // one input: the streaming dot straight from the packed bytes (`quantMatvec`'s)
            switch B == 1 ? .f32 : w.format {
            case .q4Packed, .q8Packed:
                // rows decoded two at a time, each pair once for all B inputs
                let isQ4 = w.format == .q4Packed
                let rowFloats = w.cols + 2 * (nb + 16)
                let rows = (DecodedRow(scratch, cols: w.cols, nb: nb), DecodedRow(scratch + rowFloats, cols: w.cols, nb: nb))
                let mainBlocks = isQ4 ? nb / 4 * 4 : nb / 2 * 2
                func decode(_ r: Int, into row: DecodedRow) {
                    let src = w.data + r * w.rowBytes
                    if isQ4 { decodeQ4PackedRow(src, nb: nb, q: row.q, d: row.d, m: row.m) } else { decodeQ8PackedRow(src, nb: nb, q: row.q, d: row.d) }
                }
                var r = a
                while r < b {
                    // a last single row is decoded twice; its twin's results are dropped
                    let pair = r + 1 < b ? 2 : 1
                    decode(r, into: rows.0)
                    decode(r + pair - 1, into: rows.1)
                    var i = 0
                    while i < B {
                        let n = min(3, B - i)
                        let x = (job.x + i * job.xStride, job.x + min(i + 1, B - 1) * job.xStride, job.x + min(i + 2, B - 1) * job.xStride)
                        let acc = switch n {
                        case 1: decodedMainAccumulators(1, rows, x, blocks: mainBlocks)
                        case 2: decodedMainAccumulators(2, rows, x, blocks: mainBlocks)
                        default: decodedMainAccumulators(3, rows, x, blocks: mainBlocks)
                        }
                        for k in 0..<pair {
                            let row = k == 0 ? rows.0 : rows.1
                            for t in 0..<n {
                                let (acc0, acc1) = acc[k, t]
                                let xt = job.x + (i + t) * job.xStride
                                job.y[(i + t) * job.yStride + r + k] = isQ4
                                    ? finishDecodedQ4Packed(acc0, acc1, row.q, row.d, row.m, xt, xsums + (i + t) * nb, nb: nb)
                                    : finishDecodedQ8Packed(acc0, acc1, row.q, row.d, xt, nb: nb)
                            }
                        }
                        i += n
                    }
                    r += pair
                }
            default:  // (and any format for one input)
                var r = a
                while r < b {
                    let tile = r..<min(b, r + quantMatvecBatchTileRows)
                    for i in 0..<B {
                        let one = QuantMatvecJob(y: job.y + i * job.yStride, w: w, x: job.x + i * job.xStride)
                        quantMatvecRows(one, rows: tile, blockSums: xsums + i * nb, scratch: scratch)
                    }
                    r = tile.upperBound
                }
            }
        }
    }
}

// The packed rows decoded once and dotted with many inputs. Each dot repeats, operation by
// operation, `rowDotQ4Packed` / `rowDotQ8Packed` with the decoded values read from memory
// instead of decoded in registers (the values are the same small integers, exactly), so its
// result is bit for bit theirs. Tested against them for every tail group.

@inline(__always) func load16(_ p: UnsafePointer<Float>, _ i: Int) -> SIMD16<Float> {
    UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self)
}
@inline(__always) func load8(_ p: UnsafePointer<Float>, _ i: Int) -> SIMD8<Float> {
    UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
}
@inline(__always) func load4(_ p: UnsafePointer<Float>, _ i: Int) -> SIMD4<Float> {
    UnsafeRawPointer(p + i).loadUnaligned(as: SIMD4<Float>.self)
}
@inline(__always) func store<V: SIMD>(_ v: V, _ p: UnsafeMutablePointer<Float>, _ i: Int) where V.Scalar == Float {
    UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: V.self)
}

/// A q4Packed row's 4-bit values as floats in element order, and its scales and minimums.
/// - Parameters:
///   - q: [nb·32], d: [nb + 16] scales, m: [nb + 16] minimums (fp32)
@inline(__always)
func decodeQ4PackedRow(_ row: UnsafeRawPointer, nb: Int, q: UnsafeMutablePointer<Float>, d: UnsafeMutablePointer<Float>,
                       m: UnsafeMutablePointer<Float>) {
    let n = nb * 32
    halfsToFloats(row.assumingMemoryBound(to: Float16.self), d, nb)
    halfsToFloats(row.assumingMemoryBound(to: Float16.self) + nb, m, nb)
    var e = 0, qb = row + 4 * nb
    while e + 128 <= n {
        let v = qb.loadUnaligned(as: SIMD16<UInt32>.self)
        for bb in 0..<4 {
            store(smallIntsToFloat((v &>> UInt32(8 * bb)) & 0xF), q, e + 32 * bb)
            store(smallIntsToFloat((v &>> UInt32(8 * bb + 4)) & 0xF), q, e + 32 * bb + 16)
        }
        e += 128; qb += 64
    }
    if e + 64 <= n {
        let v = qb.loadUnaligned(as: SIMD8<UInt32>.self)
        for bb in 0..<2 {
            for k in 0..<4 { store(smallIntsToFloat((v &>> UInt32(16 * bb + 4 * k)) & 0xF), q, e + 32 * bb + 8 * k) }
        }
        e += 64; qb += 32
    }
    if e + 32 <= n {
        let v = qb.loadUnaligned(as: SIMD4<UInt32>.self)
        for k in 0..<8 { store(smallIntsToFloat((v &>> UInt32(4 * k)) & 0xF), q, e + 4 * k) }
    }
}

/// `rowDotQ4Packed` of a row decoded by `decodeQ4PackedRow`, from the accumulators of its
/// main loop on (acc0: the even blocks of the whole groups of 128 columns, acc1: the odd
/// ones; `decodedMainAccumulators`): the tail groups of 64 and 32 columns, the minimums'
/// term, the sum.
/// - Parameters:
///   - x: [nb·32], xsum: [nb] Σx per block
@inline(__always)
func finishDecodedQ4Packed(_ acc0: SIMD16<Float>, _ acc1: SIMD16<Float>, _ q: UnsafePointer<Float>, _ d: UnsafePointer<Float>,
                           _ m: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ xsum: UnsafePointer<Float>, nb: Int) -> Float {
    let n = nb * 32
    var acc8 = SIMD8<Float>(), acc4 = SIMD4<Float>()
    var e = n / 128 * 128
    if e + 64 <= n {
        let b = e / 32
        for bb in 0..<2 {
            var p = SIMD8<Float>()
            for k in 0..<4 { p.addProduct(load8(q, e + 32 * bb + 8 * k), load8(x, e + 32 * bb + 8 * k)) }
            acc8.addProduct(SIMD8(repeating: d[b + bb]), p)
        }
        e += 64
    }
    if e + 32 <= n {
        var p = SIMD4<Float>()
        for k in 0..<8 { p.addProduct(load4(q, e + 4 * k), load4(x, e + 4 * k)) }
        acc4.addProduct(SIMD4(repeating: d[e / 32]), p)
    }
    var mv = SIMD16<Float>()
    var b = 0
    while b + 16 <= nb {
        mv.addProduct(load16(m, b), load16(xsum, b))
        b += 16
    }
    var mAcc = treeSum(mv)
    while b < nb { mAcc += m[b] * xsum[b]; b += 1 }
    return treeSum(acc0 + acc1) + acc8.sum() + acc4.sum() + mAcc
}

/// A q8Packed row's 8-bit values as floats in element order, and its scales.
/// - Parameters:
///   - q: [nb·32], d: [nb + 16] scales (fp32)
@inline(__always)
func decodeQ8PackedRow(_ row: UnsafeRawPointer, nb: Int, q: UnsafeMutablePointer<Float>, d: UnsafeMutablePointer<Float>) {
    let n = nb * 32
    halfsToFloats(row.assumingMemoryBound(to: Float16.self), d, nb)
    let bias = SIMD16<Float>(repeating: 8_388_608 + 128), bias8 = SIMD8<Float>(repeating: 8_388_608 + 128)
    var e = 0, qb = row + 2 * nb
    while e + 64 <= n {
        let v = qb.loadUnaligned(as: SIMD16<UInt32>.self)
        for bb in 0..<2 {
            store(unsafeBitCast(((v &>> UInt32(16 * bb)) & 0xFF) | 0x4B00_0000, to: SIMD16<Float>.self) - bias, q, e + 32 * bb)
            store(unsafeBitCast(((v &>> UInt32(16 * bb + 8)) & 0xFF) | 0x4B00_0000, to: SIMD16<Float>.self) - bias, q, e + 32 * bb + 16)
        }
        e += 64; qb += 64
    }
    if e + 32 <= n {
        let v = qb.loadUnaligned(as: SIMD8<UInt32>.self)
        for k in 0..<4 { store(unsafeBitCast(((v &>> UInt32(8 * k)) & 0xFF) | 0x4B00_0000, to: SIMD8<Float>.self) - bias8, q, e + 8 * k) }
    }
}

/// `rowDotQ8Packed` of a row decoded by `decodeQ8PackedRow`, from the accumulators of its
/// main loop on (acc0: the even blocks of the whole groups of 64 columns, acc1: the odd ones;
/// `decodedMainAccumulators`): the tail block, the sum.
@inline(__always)
func finishDecodedQ8Packed(_ acc0: SIMD16<Float>, _ acc1: SIMD16<Float>, _ q: UnsafePointer<Float>, _ d: UnsafePointer<Float>,
                           _ x: UnsafePointer<Float>, nb: Int) -> Float {
    let n = nb * 32, e = n / 64 * 64
    var acc8 = SIMD8<Float>()
    if e + 32 <= n {
        var p = SIMD8<Float>()
        for k in 0..<4 { p.addProduct(load8(q, e + 8 * k), load8(x, e + 8 * k)) }
        acc8.addProduct(SIMD8(repeating: d[e / 32]), p)
    }
    return treeSum(acc0 + acc1) + acc8.sum()
}

// Many inputs against two decoded rows at once.

/// One weight row decoded into scratch by `decodeQ4PackedRow` / `decodeQ8PackedRow`: [cols]
/// values, [nb + 16] scales, [nb + 16] minimums (Q4 only).
struct DecodedRow {
    let q, d, m: UnsafeMutablePointer<Float>

    init(_ base: UnsafeMutablePointer<Float>, cols: Int, nb: Int) {
        q = base
        d = base + cols
        m = d + nb + 16
    }
}

/// The accumulators of `rowDotQ4Packed`'s / `rowDotQ8Packed`'s main loop for two decoded rows
/// and the inputs x.0..<x.(n−1), over the first `blocks` blocks: acc0 sums the even blocks,
/// acc1 the odd ones, each block adding d · (q[i..<i+16]·x[i..<i+16] + q[i+16..<i+32]·
/// x[i+16..<i+32]) lane by lane. `n` (1, 2 or 3) is a constant at every call site.
///
/// Lane by lane these are the one-row loop's operations in its order, so `finishDecoded…` of
/// them is bit for bit the one-row dot. Only the order of independent work changes: one dot
/// at a time is bound by its loads (two per FMA) and reads every input once per row, so here
/// each 8-lane half of acc0 and of acc1 is a pass of its own, in which a block's weights are
/// loaded once for n inputs and each input once for both rows (6 accumulators, 4 weight
/// vectors, 2 scales and 2 input vectors in the 16 AVX2 registers; 12 loads per 18 FMAs).
@inline(__always)
func decodedMainAccumulators(_ n: Int, _ rows: (DecodedRow, DecodedRow),
                             _ x: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>), blocks: Int) -> DecodedAccumulators {
    DecodedAccumulators(evenLow: decodedHalfPass(n, rows, x, first: 0, blocks: blocks, lane: 0),
                        evenHigh: decodedHalfPass(n, rows, x, first: 0, blocks: blocks, lane: 8),
                        oddLow: decodedHalfPass(n, rows, x, first: 1, blocks: blocks, lane: 0),
                        oddHigh: decodedHalfPass(n, rows, x, first: 1, blocks: blocks, lane: 8))
}

/// Lanes `lane..<lane + 8` of the accumulator of every other block from `first` on.
@inline(__always)
func decodedHalfPass(_ n: Int, _ rows: (DecodedRow, DecodedRow),
                     _ x: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>), first: Int, blocks: Int,
                     lane: Int) -> HalfSums {
    var s = HalfSums()
    let q0 = UnsafePointer(rows.0.q), q1 = UnsafePointer(rows.1.q), d0 = rows.0.d, d1 = rows.1.d
    var b = first
    while b < blocks {
        let i = 32 * b + lane
        let w0 = (load8(q0, i), load8(q0, i + 16)), w1 = (load8(q1, i), load8(q1, i + 16))
        let e0 = SIMD8<Float>(repeating: d0[b]), e1 = SIMD8<Float>(repeating: d1[b])
        addDecodedHalf(&s.r0x0, &s.r1x0, w0, w1, e0, e1, x.0, i)
        if n > 1 { addDecodedHalf(&s.r0x1, &s.r1x1, w0, w1, e0, e1, x.1, i) }
        if n > 2 { addDecodedHalf(&s.r0x2, &s.r1x2, w0, w1, e0, e1, x.2, i) }
        b += 2
    }
    return s
}

/// One block's half for one input and both rows: a_r += d_r · (q_r[i..<i+8]·x[i..<i+8] +
/// q_r[i+16..<i+24]·x[i+16..<i+24]), lane by lane, as the one-row dots compute those lanes.
@inline(__always)
func addDecodedHalf(_ a0: inout SIMD8<Float>, _ a1: inout SIMD8<Float>, _ w0: (SIMD8<Float>, SIMD8<Float>),
                    _ w1: (SIMD8<Float>, SIMD8<Float>), _ d0: SIMD8<Float>, _ d1: SIMD8<Float>, _ x: UnsafePointer<Float>, _ i: Int) {
    let xa = load8(x, i), xb = load8(x, i + 16)
    var p = w0.0 * xa
    p.addProduct(w0.1, xb)
    a0.addProduct(d0, p)
    p = w1.0 * xa
    p.addProduct(w1.1, xb)
    a1.addProduct(d1, p)
}

/// 8 lanes of the accumulators of two rows (r0, r1) with three inputs (x0, x1, x2).
struct HalfSums {
    var r0x0 = SIMD8<Float>(), r0x1 = SIMD8<Float>(), r0x2 = SIMD8<Float>()
    var r1x0 = SIMD8<Float>(), r1x1 = SIMD8<Float>(), r1x2 = SIMD8<Float>()

    @inline(__always)
    subscript(row: Int, input: Int) -> SIMD8<Float> {
        switch (row, input) {
        case (0, 0): r0x0
        case (0, 1): r0x1
        case (0, _): r0x2
        case (_, 0): r1x0
        case (_, 1): r1x1
        default: r1x2
        }
    }
}

/// `decodedMainAccumulators`' result: the four halves, joined per (row, input) pair.
struct DecodedAccumulators {
    let evenLow, evenHigh, oddLow, oddHigh: HalfSums

    /// acc0 and acc1 of `row` (0, 1) with `input` (0..<3)
    @inline(__always)
    subscript(row: Int, input: Int) -> (SIMD16<Float>, SIMD16<Float>) {
        (SIMD16(lowHalf: evenLow[row, input], highHalf: evenHigh[row, input]),
         SIMD16(lowHalf: oddLow[row, input], highHalf: oddHigh[row, input]))
    }
}
