// Tensor-level dequantization: whole tensors or row ranges to row-major Float, split by
// blocks over `Threads.count` threads (this runs for every weight at model load).
#if canImport(Glibc)
import Glibc
#endif
import Parallelism

extension GGUFFile {
    private func checkSupported(_ t: GGUFTensorInfo) throws {
        guard t.type.isSupported else {
            throw WeightFormatError.unsupportedType(path: path, tensor: t.name, type: t.type.name,
                                                    hint: "dequantizable types: " + GGMLType.allCases.filter(\.isSupported).map(\.name).joined(separator: ", "))
        }
    }

    /// The whole tensor as row-major Float (`shape[0]` innermost).
    public func dequantize(_ t: GGUFTensorInfo) throws -> [Float] {
        try checkSupported(t)
        return [Float](unsafeUninitializedCapacity: t.elementCount) { buf, n in
            if t.elementCount > 0 {
                adviseHugePages(UnsafeMutableRawPointer(buf.baseAddress!), t.elementCount * 4)
                dequantizeBlocks(t, fromElement: 0, count: t.elementCount, into: buf.baseAddress!)
            }
            n = t.elementCount
        }
    }

    /// The whole tensor into `out`, which must hold exactly `elementCount` floats.
    public func dequantize(_ t: GGUFTensorInfo, into out: UnsafeMutableBufferPointer<Float>) throws {
        try checkSupported(t)
        guard out.count == t.elementCount else {
            throw WeightFormatError.invalidArgument("dequantize '\(t.name)': buffer holds \(out.count) floats, expected \(t.elementCount)")
        }
        if t.elementCount > 0 { dequantizeBlocks(t, fromElement: 0, count: t.elementCount, into: out.baseAddress!) }
    }

    /// Rows `rows` of the tensor (each `rowLength` floats), e.g. embedding rows for tokens.
    public func dequantize(_ t: GGUFTensorInfo, rows: Range<Int>) throws -> [Float] {
        try checkSupported(t)
        guard rows.lowerBound >= 0, rows.upperBound <= t.rowCount else {
            throw WeightFormatError.invalidArgument("dequantize '\(t.name)': rows \(rows) outside 0..<\(t.rowCount)")
        }
        let n = rows.count * t.rowLength
        return [Float](unsafeUninitializedCapacity: n) { buf, c in
            if n > 0 { dequantizeBlocks(t, fromElement: rows.lowerBound * t.rowLength, count: n, into: buf.baseAddress!) }
            c = n
        }
    }

    /// How `blocks` quantization blocks are cut across `Threads.count` threads: at least
    /// 16K blocks (~0.5M floats) per piece keeps the dispatch overhead negligible, and 4
    /// pieces per thread keep a preempted thread from holding up the others.
    public static func dequantizeSplit(blocks: Int) -> WorkSplit {
        WorkSplit(blocks, minimum: 16_384, perThread: 4)
    }

    /// `count` elements from element `first` (both multiples of the block size), in parallel.
    private func dequantizeBlocks(_ t: GGUFTensorInfo, fromElement first: Int, count: Int, into dst: UnsafeMutablePointer<Float>) {
        let bs = t.type.blockSize, bpb = t.type.bytesPerBlock
        let src = file.bytes.baseAddress! + t.offset + first / bs * bpb
        let type = t.type
        let split = Self.dequantizeSplit(blocks: count / bs)
        parallelFor(split.parts) { p in
            let blocks = split[p]
            if !blocks.isEmpty {
                dequantizeRow(type, src + blocks.lowerBound * bpb, dst + blocks.lowerBound * bs, count: blocks.count * bs)
            }
        }
    }
}

/// For a large fresh output buffer, asks the kernel for transparent huge pages before the
/// first write: writing 100+ MB into new memory otherwise costs one page fault per 4 KB,
/// which takes longer than the dequantization itself. Only a hint; failure is harmless.
func adviseHugePages(_ p: UnsafeMutableRawPointer, _ bytes: Int) {
    #if os(Linux)
    let huge = 2 << 20
    guard bytes >= 4 * huge else { return }
    let start = (Int(bitPattern: p) + huge - 1) & ~(huge - 1)
    let end = (Int(bitPattern: p) + bytes) & ~(huge - 1)
    if end > start { _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, MADV_HUGEPAGE) }
    #endif
}
