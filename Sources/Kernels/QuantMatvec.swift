// y = W·x with W read in its quantized form (Q4_0/Q4_1/Q8_0/F16/BF16/F32 rows) and x in
// fp32: the decode path, which is memory-bound, so it streams the compact bytes (Q4_1 is
// 0.625 B per weight) instead of an fp32 copy. Activations are *not* quantized (llama.cpp
// rounds them to 8 bits; we keep fp32 so the results match the fp32 reference).
//
// For the 4-bit formats, d·q + m summed against x splits as d·⟨q, x⟩ + m·Σx, so the block
// sums of x are computed once per call and each block costs one widening, two int→float
// conversions and three FMAs.
import Parallelism

/// One y = W·x of a batch handed to `quantMatvec(_:)`.
public struct QuantMatvecJob: @unchecked Sendable {
    /// [rows] output
    public let y: UnsafeMutablePointer<Float>
    /// [rows, cols]
    public let w: QuantMatrix
    /// [cols] input
    public let x: UnsafePointer<Float>
    public init(y: UnsafeMutablePointer<Float>, w: QuantMatrix, x: UnsafePointer<Float>) {
        self.y = y
        self.w = w
        self.x = x
    }
}

/// y[rows] = W[rows, cols] · x[cols], rows split across threads.
@inlinable
public func quantMatvec(_ y: UnsafeMutablePointer<Float>, _ w: QuantMatrix, _ x: UnsafePointer<Float>) {
    quantMatvec([QuantMatvecJob(y: y, w: w, x: x)])
}

/// Several independent matvecs (e.g. the Q, K and V projections of one token) in a single
/// parallel dispatch: the rows of all jobs are concatenated and split evenly across threads.
public func quantMatvec(_ jobs: [QuantMatvecJob]) {
    // block sums of each job's x (only the 4-bit formats use them)
    var sums: [[Float]] = []
    var offsets: [Int] = [0]
    for j in jobs {
        sums.append(quantBlockSums(j.w, j.x))
        offsets.append(offsets.last! + j.w.rows)
    }
    let total = offsets.last!
    let box = UnsafeSendable((jobs, sums, offsets))
    let (pieces, step) = quantMatvecSplit(rows: total)
    parallelFor(pieces) { piece in
        let (jobs, sums, offsets) = box.value
        let lo = piece * step, hi = min(total, lo + step)
        for (ji, job) in jobs.enumerated() {
            let a = max(lo, offsets[ji]) - offsets[ji], b = min(hi, offsets[ji + 1]) - offsets[ji]
            if a >= b { continue }
            sums[ji].withUnsafeBufferPointer { s in
                quantMatvecRows(job, rows: a..<b, blockSums: s.baseAddress)
            }
        }
    }
}

/// Σx per block of 32 of `x` [cols] for the 4-bit formats (their minimum or offset term
/// multiplies it), else empty.
public func quantBlockSums(_ w: QuantMatrix, _ x: UnsafePointer<Float>) -> [Float] {
    guard w.format == .q4_0 || w.format == .q4_1 || w.format == .q4Packed else { return [] }
    let nb = w.cols / 32
    var s = [Float](repeating: 0, count: nb)
    for b in 0..<nb {
        var v = UnsafeRawPointer(x + b * 32).loadUnaligned(as: SIMD16<Float>.self)
        v += UnsafeRawPointer(x + b * 32 + 16).loadUnaligned(as: SIMD16<Float>.self)
        s[b] = v.sum()
    }
    return s
}

/// The rows `rows` of one job, on the calling thread.
/// - Parameters:
///   - blockSums: [cols/32] Σx per block (for Q4_0/Q4_1), else unused
@inlinable
public func quantMatvecRows(_ job: QuantMatvecJob, rows: Range<Int>, blockSums: UnsafePointer<Float>?) {
    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: job.w.cols / 32 + 16)
    defer { scratch.deallocate() }
    quantMatvecRows(job, rows: rows, blockSums: blockSums, scratch: scratch)
}

/// `quantMatvecRows` with the caller's scratch.
/// - Parameters:
///   - scratch: [cols/32 + 16] floats
@inlinable
public func quantMatvecRows(_ job: QuantMatvecJob, rows: Range<Int>, blockSums: UnsafePointer<Float>?,
                            scratch: UnsafeMutablePointer<Float>) {
    let w = job.w, x = job.x, rb = w.rowBytes, nb = w.cols / 32
    switch w.format {
    case .q4_1:
        for r in rows { job.y[r] = rowDotQ4(w.data + r * rb, x, blockSums!, nb: nb, hasMin: true) }
    case .q4_0:
        for r in rows { job.y[r] = rowDotQ4(w.data + r * rb, x, blockSums!, nb: nb, hasMin: false) }
    case .q8_0:
        for r in rows { job.y[r] = rowDotQ8_0(w.data + r * rb, x, nb: nb) }
    case .q4Packed:
        for r in rows { job.y[r] = rowDotQ4Packed(w.data + r * rb, x, blockSums!, nb: nb, scratch: scratch) }
    case .q8Packed:
        for r in rows { job.y[r] = rowDotQ8Packed(w.data + r * rb, x, nb: nb, scratch: scratch) }
    case .f16:
        for r in rows { job.y[r] = rowDotF16(w.data + r * rb, x, w.cols) }
    case .bf16:
        for r in rows { job.y[r] = rowDotBF16(w.data + r * rb, x, w.cols) }
    case .f32:
        for r in rows { job.y[r] = dot(w.data.assumingMemoryBound(to: Float.self) + r * w.cols, x, w.cols) }
    }
}

/// ⟨row, x⟩ for a Q4_1 (hasMin) or Q4_0 row of nb blocks.
@inlinable @inline(__always)
public func rowDotQ4(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ xsum: UnsafePointer<Float>, nb: Int, hasMin: Bool) -> Float {
    let bb = hasMin ? 20 : 18, qo = hasMin ? 4 : 2
    var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>()
    var mAcc: Float = 0
    let mask = SIMD16<Int32>(repeating: 0xF)
    var b = 0
    @inline(__always) func block(_ b: Int, _ acc: inout SIMD16<Float>) {
        let blk = row + b * bb
        let d = halfToFloat(blk.loadUnaligned(as: UInt16.self))
        let m = hasMin ? halfToFloat(blk.loadUnaligned(fromByteOffset: 2, as: UInt16.self)) : -8 * d
        let q = SIMD16<Int32>(truncatingIfNeeded: blk.loadUnaligned(fromByteOffset: qo, as: SIMD16<UInt8>.self))
        let lo = SIMD16<Float>(q & mask), hi = SIMD16<Float>(q &>> 4)
        let xp = UnsafeRawPointer(x + b * 32)
        var p = lo * xp.loadUnaligned(as: SIMD16<Float>.self)
        p.addProduct(hi, xp.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self))
        acc.addProduct(SIMD16(repeating: d), p)
        mAcc += m * xsum[b]
    }
    while b + 2 <= nb { block(b, &acc0); block(b + 1, &acc1); b += 2 }
    if b < nb { block(b, &acc0) }
    return (acc0 + acc1).sum() + mAcc
}

/// ⟨row, x⟩ for a Q8_0 row of nb blocks.
@inlinable @inline(__always)
public func rowDotQ8_0(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, nb: Int) -> Float {
    var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>()
    var b = 0
    @inline(__always) func block(_ b: Int, _ acc: inout SIMD16<Float>) {
        let blk = row + b * 34
        let d = halfToFloat(blk.loadUnaligned(as: UInt16.self))
        let q0 = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: blk.loadUnaligned(fromByteOffset: 2, as: SIMD16<Int8>.self)))
        let q1 = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: blk.loadUnaligned(fromByteOffset: 18, as: SIMD16<Int8>.self)))
        let xp = UnsafeRawPointer(x + b * 32)
        var p = q0 * xp.loadUnaligned(as: SIMD16<Float>.self)
        p.addProduct(q1, xp.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self))
        acc.addProduct(SIMD16(repeating: d), p)
    }
    while b + 2 <= nb { block(b, &acc0); block(b + 1, &acc1); b += 2 }
    if b < nb { block(b, &acc0) }
    return (acc0 + acc1).sum()
}

/// ⟨row, x⟩ for an F16 row of n elements.
@inlinable @inline(__always)
public func rowDotF16(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD16<Float>(), i = 0
    while i + 16 <= n {
        let h = row.loadUnaligned(fromByteOffset: 2 * i, as: SIMD16<Float16>.self)
        acc.addProduct(SIMD16<Float>(h), UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self))
        i += 16
    }
    var s = acc.sum()
    while i < n { s += halfToFloat(row.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) * x[i]; i += 1 }
    return s
}

/// ⟨row, x⟩ for a BF16 row of n elements.
@inlinable @inline(__always)
public func rowDotBF16(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD16<Float>(), i = 0
    while i + 16 <= n {
        let h = SIMD16<UInt32>(truncatingIfNeeded: row.loadUnaligned(fromByteOffset: 2 * i, as: SIMD16<UInt16>.self)) &<< 16
        acc.addProduct(unsafeBitCast(h, to: SIMD16<Float>.self), UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self))
        i += 16
    }
    var s = acc.sum()
    while i < n {
        s += Float(bitPattern: UInt32(row.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16) * x[i]
        i += 1
    }
    return s
}

/// Reference for `quantMatvec`: decodes each row with the scalar decoder and sums in Double.
/// - Parameters:
///   - y: [rows]
///   - x: [cols]
public func quantMatvecNaive(_ y: UnsafeMutablePointer<Float>, _ w: QuantMatrix, _ x: UnsafePointer<Float>) {
    var row = [Float](repeating: 0, count: w.cols)
    for r in 0..<w.rows {
        row.withUnsafeMutableBufferPointer { w.dequantizeRow(r, into: $0.baseAddress!) }
        var s = 0.0
        for c in 0..<w.cols { s += Double(row[c]) * Double(x[c]) }
        y[r] = Float(s)
    }
}

/// How the matvecs split `rows` output rows across threads: 4 pieces per thread, claimed
/// dynamically, so a thread that the OS preempts does not hold the others up; pieces are
/// multiples of 16 rows (no false sharing of y). Returns the piece count and rows per piece.
func quantMatvecSplit(rows total: Int) -> (pieces: Int, step: Int) {
    let pieces = Threads.count == 1 ? 1 : max(1, min(4 * Threads.count, total / 64))
    return (pieces, ((total + pieces - 1) / pieces + 15) / 16 * 16)
}
