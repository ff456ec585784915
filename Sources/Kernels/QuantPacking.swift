// Repacking Q4_0/Q4_1/Q8_0 rows into layouts that Swift's SIMD types read without
// widening conversions. Swift lowers `SIMD16<Int32>(truncatingIfNeeded: SIMD16<UInt8>)` and
// `SIMD16<Float>(SIMD16<Int32>)` to out-of-line calls (the SIMD16 ABI splits into four
// xmm registers), which made the GGUF block layout run at a third of the speed. In the
// packed layout each 32-bit lane holds 8 nibbles (or 4 bytes) that belong to 8 (4)
// different 16-wide element runs, so one 64-byte load + shift + mask gives 16 small
// integers, and `bitcast(q | 0x4B000000) − 2²³` turns them into exact floats.
//
// q4Packed row of n = 32·nb elements: nb fp16 d, nb fp16 m, then the quants (n/2 bytes),
// value = d·q + m (Q4_0 stores m = −8·d, exact in fp16). Scales first keeps the reads of a
// matrix one forward stream (the prefetcher's favourite). The quants come in groups:
//   128 elements: 16 lanes (64 B), nibble k of lane i = element 16k + i of the group;
//   then at most one group of 64: 8 lanes, nibble k of lane i = element 8k + i;
//   then at most one group of 32: 4 lanes, nibble k of lane i = element 4k + i.
// q8Packed row: nb fp16 d, then the quants (n bytes), value = d·q. Groups of 64 elements:
//   16 lanes, byte k of lane i = (element 16k + i) + 128; then at most one group of 32:
//   8 lanes, byte k of lane i = (element 8k + i) + 128.
import Parallelism

/// The lane width (16, 8 or 4), group size and first element of the group holding
/// element `e` of a row of `n` elements, for a layout whose full groups hold `full` elements.
@inlinable
func packedGroup(_ e: Int, count n: Int, full: Int) -> (width: Int, start: Int) {
    let mains = n / full * full
    if e < mains { return (16, e / full * full) }
    var start = mains, size = full / 2
    while size >= 32 {
        if n - start >= size {
            if e < start + size { return (16 * size / full, start) }
            start += size
        }
        size /= 2
    }
    return (4, start)  // unreachable for n a multiple of 32
}

/// Element `e` of a q4Packed row of `n` elements.
public func packedQ4Value(_ row: UnsafeRawPointer, element e: Int, count n: Int) -> Float {
    let nb = n / 32
    let (w, start) = packedGroup(e, count: n, full: 128)
    let k = (e - start) / w, i = (e - start) % w
    let lane = row.loadUnaligned(fromByteOffset: 4 * nb + start / 2 + 4 * i, as: UInt32.self)
    let q = Float((lane >> (4 * UInt32(k))) & 0xF)
    let d = halfToFloat(row.loadUnaligned(fromByteOffset: 2 * (e / 32), as: UInt16.self))
    let m = halfToFloat(row.loadUnaligned(fromByteOffset: 2 * nb + 2 * (e / 32), as: UInt16.self))
    return d * q + m
}

/// Element `e` of a q8Packed row of `n` elements.
public func packedQ8Value(_ row: UnsafeRawPointer, element e: Int, count n: Int) -> Float {
    let (w, start) = packedGroup(e, count: n, full: 64)
    let k = (e - start) / w, i = (e - start) % w
    let lane = row.loadUnaligned(fromByteOffset: 2 * (n / 32) + start + 4 * i, as: UInt32.self)
    let q = Float(Int((lane >> (8 * UInt32(k))) & 0xFF) - 128)
    let d = halfToFloat(row.loadUnaligned(fromByteOffset: 2 * (e / 32), as: UInt16.self))
    return d * q
}

/// Owned bytes of a packed matrix.
public final class PackedBytes: @unchecked Sendable {
    public let p: UnsafeMutableRawPointer
    public init(count: Int) { p = UnsafeMutableRawPointer.allocate(byteCount: max(1, count), alignment: 64) }
    deinit { p.deallocate() }
}

extension QuantMatrix {
    /// A copy in the decode layout (q4Packed for Q4_0/Q4_1, q8Packed for Q8_0); other
    /// formats are returned as they are.
    public func packedForDecode() -> QuantMatrix {
        let target: QuantFormat
        switch format {
        case .q4_0, .q4_1: target = .q4Packed
        case .q8_0: target = .q8Packed
        default: return self
        }
        let rb = target.rowBytes(cols)
        let bytes = PackedBytes(count: rows * rb)
        let src = UnsafeSendable(self), dst = UnsafeSendable(bytes.p)
        parallelRanges(rows, minimum: 64) { r in
            let q = UnsafeMutablePointer<UInt8>.allocate(capacity: src.value.cols)
            let d = UnsafeMutablePointer<UInt16>.allocate(capacity: 2 * (src.value.cols / 32) + 1)
            defer { q.deallocate(); d.deallocate() }
            for row in r { src.value.packRow(row, into: dst.value + row * rb, q: q, d: d, m: d + src.value.cols / 32) }
        }
        return QuantMatrix(format: target, rows: rows, cols: cols, data: UnsafeRawPointer(bytes.p), owner: bytes)
    }

    /// - Parameters:
    ///   - q, d, m: scratch of cols, cols/32, cols/32 entries
    func packRow(_ r: Int, into out: UnsafeMutableRawPointer, q: UnsafeMutablePointer<UInt8>,
                 d: UnsafeMutablePointer<UInt16>, m: UnsafeMutablePointer<UInt16>) {
        let n = cols, nb = n / 32
        let blk0 = data + r * rowBytes
        let isQ4 = format != .q8_0
        for b in 0..<nb {
            let blk = blk0 + b * format.blockBytes
            d[b] = blk.loadUnaligned(as: UInt16.self)
            switch format {
            case .q4_1:
                m[b] = blk.loadUnaligned(fromByteOffset: 2, as: UInt16.self)
            case .q4_0:
                m[b] = Float16(-8 * halfToFloat(d[b])).bitPattern
            default:
                break
            }
            if isQ4 {
                let qs = blk + (format == .q4_1 ? 4 : 2)
                for j in 0..<16 {
                    let byte = qs.load(fromByteOffset: j, as: UInt8.self)
                    q[b * 32 + j] = byte & 0xF
                    q[b * 32 + j + 16] = byte >> 4
                }
            } else {
                for j in 0..<32 { q[b * 32 + j] = UInt8(truncatingIfNeeded: Int(blk.load(fromByteOffset: 2 + j, as: Int8.self)) + 128) }
            }
        }
        let lanes = (out + (isQ4 ? 4 * nb : 2 * nb)).assumingMemoryBound(to: UInt32.self)
        var e = 0, o = 0
        let full = isQ4 ? 128 : 64, perLane = isQ4 ? 8 : 4, bits = UInt32(isQ4 ? 4 : 8)
        var size = full
        while size >= 32 {
            let width = size / perLane
            while n - e >= size {
                for i in 0..<width {
                    var lane: UInt32 = 0
                    for k in 0..<perLane { lane |= UInt32(q[e + width * k + i]) << (bits * UInt32(k)) }
                    lanes[o + i] = lane
                }
                o += width; e += size
                if size < full { break }  // at most one group of each smaller size
            }
            size /= 2
        }
        let scales = out.assumingMemoryBound(to: UInt16.self)
        for b in 0..<nb {
            scales[b] = d[b]
            if isQ4 { scales[nb + b] = m[b] }
        }
    }
}

@inlinable @inline(__always)
func smallIntsToFloat(_ v: SIMD16<UInt32>) -> SIMD16<Float> {
    unsafeBitCast(v | 0x4B00_0000, to: SIMD16<Float>.self) - 8_388_608
}

@inlinable @inline(__always)
func smallIntsToFloat(_ v: SIMD8<UInt32>) -> SIMD8<Float> {
    unsafeBitCast(v | 0x4B00_0000, to: SIMD8<Float>.self) - 8_388_608
}

@inlinable @inline(__always)
func smallIntsToFloat(_ v: SIMD4<UInt32>) -> SIMD4<Float> {
    unsafeBitCast(v | 0x4B00_0000, to: SIMD4<Float>.self) - 8_388_608
}

/// ⟨row, x⟩ for a q4Packed row of nb blocks; xsum[b] = Σ of x over block b.
@inlinable @inline(__always)
public func rowDotQ4Packed(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ xsum: UnsafePointer<Float>, nb: Int,
                           scratch: UnsafeMutablePointer<Float>) -> Float {
    let n = nb * 32
    let mp = row.assumingMemoryBound(to: Float16.self) + nb
    // the row's scales in fp32 (16 per conversion), so each block's broadcast is one load
    let dp = scratch
    halfsToFloats(row.assumingMemoryBound(to: Float16.self), dp, nb)
    var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>(), acc8 = SIMD8<Float>(), acc4 = SIMD4<Float>()
    var e = 0, qb = row + 4 * nb
    while e + 128 <= n {
        let v = qb.loadUnaligned(as: SIMD16<UInt32>.self)
        let xp = UnsafeRawPointer(x + e), b = e / 32
        @inline(__always) func block(_ bb: Int, _ acc: inout SIMD16<Float>) {
            let lo = smallIntsToFloat((v &>> UInt32(8 * bb)) & 0xF)
            let hi = smallIntsToFloat((v &>> UInt32(8 * bb + 4)) & 0xF)
            var p = lo * xp.loadUnaligned(fromByteOffset: 128 * bb, as: SIMD16<Float>.self)
            p.addProduct(hi, xp.loadUnaligned(fromByteOffset: 128 * bb + 64, as: SIMD16<Float>.self))
            acc.addProduct(SIMD16(repeating: dp[b + bb]), p)
        }
        block(0, &acc0); block(1, &acc1); block(2, &acc0); block(3, &acc1)
        e += 128; qb += 64
    }
    if e + 64 <= n {
        let v = qb.loadUnaligned(as: SIMD8<UInt32>.self)
        let xp = UnsafeRawPointer(x + e), b = e / 32
        for bb in 0..<2 {
            var p = SIMD8<Float>()
            for k in 0..<4 {
                p.addProduct(smallIntsToFloat((v &>> UInt32(16 * bb + 4 * k)) & 0xF),
                             xp.loadUnaligned(fromByteOffset: 128 * bb + 32 * k, as: SIMD8<Float>.self))
            }
            acc8.addProduct(SIMD8(repeating: dp[b + bb]), p)
        }
        e += 64; qb += 32
    }
    if e + 32 <= n {
        let v = qb.loadUnaligned(as: SIMD4<UInt32>.self)
        let xp = UnsafeRawPointer(x + e)
        var p = SIMD4<Float>()
        for k in 0..<8 {
            p.addProduct(smallIntsToFloat((v &>> UInt32(4 * k)) & 0xF), xp.loadUnaligned(fromByteOffset: 16 * k, as: SIMD4<Float>.self))
        }
        acc4.addProduct(SIMD4(repeating: dp[e / 32]), p)
    }
    // Σ_b m_b·xsum_b, 16 blocks at a time (one fp16→fp32 conversion of 16 mins)
    var mv = SIMD16<Float>()
    var b = 0
    while b + 16 <= nb {
        let mh = UnsafeRawPointer(mp + b).loadUnaligned(as: SIMD16<Float16>.self)
        mv.addProduct(SIMD16<Float>(mh), UnsafeRawPointer(xsum + b).loadUnaligned(as: SIMD16<Float>.self))
        b += 16
    }
    var mAcc = treeSum(mv)
    while b < nb { mAcc += Float(mp[b]) * xsum[b]; b += 1 }
    return treeSum(acc0 + acc1) + acc8.sum() + acc4.sum() + mAcc
}

/// ⟨row, x⟩ for a q8Packed row of nb blocks.
@inlinable @inline(__always)
public func rowDotQ8Packed(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, nb: Int, scratch: UnsafeMutablePointer<Float>) -> Float {
    let n = nb * 32
    let dp = scratch
    halfsToFloats(row.assumingMemoryBound(to: Float16.self), dp, nb)
    var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>(), acc8 = SIMD8<Float>()
    let bias = SIMD16<Float>(repeating: 8_388_608 + 128), bias8 = SIMD8<Float>(repeating: 8_388_608 + 128)
    var e = 0, qb = row + 2 * nb
    while e + 64 <= n {
        let v = qb.loadUnaligned(as: SIMD16<UInt32>.self)
        let xp = UnsafeRawPointer(x + e), b = e / 32
        @inline(__always) func block(_ bb: Int, _ acc: inout SIMD16<Float>) {
            let lo = unsafeBitCast(((v &>> UInt32(16 * bb)) & 0xFF) | 0x4B00_0000, to: SIMD16<Float>.self) - bias
            let hi = unsafeBitCast(((v &>> UInt32(16 * bb + 8)) & 0xFF) | 0x4B00_0000, to: SIMD16<Float>.self) - bias
            var p = lo * xp.loadUnaligned(fromByteOffset: 128 * bb, as: SIMD16<Float>.self)
            p.addProduct(hi, xp.loadUnaligned(fromByteOffset: 128 * bb + 64, as: SIMD16<Float>.self))
            acc.addProduct(SIMD16(repeating: dp[b + bb]), p)
        }
        block(0, &acc0); block(1, &acc1)
        e += 64; qb += 64
    }
    if e + 32 <= n {
        let v = qb.loadUnaligned(as: SIMD8<UInt32>.self)
        let xp = UnsafeRawPointer(x + e)
        var p = SIMD8<Float>()
        for k in 0..<4 {
            let f = unsafeBitCast(((v &>> UInt32(8 * k)) & 0xFF) | 0x4B00_0000, to: SIMD8<Float>.self) - bias8
            p.addProduct(f, xp.loadUnaligned(fromByteOffset: 32 * k, as: SIMD8<Float>.self))
        }
        acc8.addProduct(SIMD8(repeating: dp[e / 32]), p)
    }
    return treeSum(acc0 + acc1) + acc8.sum()
}

/// Sum of the lanes as a tree (Swift's `.sum()` adds the 16 lanes one after another).
@inlinable @inline(__always)
public func treeSum(_ v: SIMD16<Float>) -> Float {
    let a = v.lowHalf + v.highHalf
    let b = a.lowHalf + a.highHalf
    let c = b.lowHalf + b.highHalf
    return c[0] + c[1]
}

/// n fp16 values to fp32, 16 at a time.
/// - Parameters:
///   - src: [n], dst: [n + 15] (the last vector may write up to 15 floats past n)
@inlinable @inline(__always)
public func halfsToFloats(_ src: UnsafePointer<Float16>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
    var i = 0
    while i + 16 <= n {
        let h = UnsafeRawPointer(src + i).loadUnaligned(as: SIMD16<Float16>.self)
        UnsafeMutableRawPointer(dst + i).storeBytes(of: SIMD16<Float>(h), as: SIMD16<Float>.self)
        i += 16
    }
    while i < n { dst[i] = Float(src[i]); i += 1 }
}
