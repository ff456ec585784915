// The int8 copy of the key matrix that stage 1 of two-stage retrieval scans
// (`KeySearch+TwoStage.swift`): a quarter of the f32 bytes, and the f32 scan is memory
// bound. Derived data, kept only in memory: the repository builds it from the mapped keys
// at open and with every new generation (rebuild, compaction) and appends to it at each
// time step, so the log stays the only source of truth and no file format is added.
//
// Row r, symmetric per-row quantization (as llama.cpp's Q8_0, one scale per row):
//   scale[r] = max |key[r][i]| / 127 over the finite values (0 for an all-zero row)
//   code[r][i] = round(key[r][i] / scale[r]) in [-127, 127]; non-finite values code 0
// Each code row is padded with zero codes to `stride` bytes, a multiple of 32, so the
// kernel needs no tail and rows start 32-byte aligned.
//   codes: [rows, stride] Int8      scales: [rows] Float
//
// Storage is chunked: blocks of `chunkRows` rows, allocated once and never moved. The
// writer appends rows past every published `View`'s count while readers scan below it,
// so a snapshot's view stays valid (it retains its chunks) without copying on growth.
import Parallelism

public final class QuantizedKeys: @unchecked Sendable {
    /// Rows per chunk (64 Ki rows: 16 MiB of codes at R = 256).
    public static let chunkRows = 1 << 16

    /// One block of `chunkRows` code rows and their scales; freed with the last reference.
    final class Chunk: @unchecked Sendable {
        let codes: UnsafeMutablePointer<Int8>
        let scales: UnsafeMutablePointer<Float>
        init(stride: Int) {
            codes = UnsafeMutableRawPointer.allocate(byteCount: QuantizedKeys.chunkRows * stride, alignment: 64)
                .bindMemory(to: Int8.self, capacity: QuantizedKeys.chunkRows * stride)
            scales = .allocate(capacity: QuantizedKeys.chunkRows)
        }
        deinit {
            codes.deallocate()
            scales.deallocate()
        }
    }

    /// An immutable view of the first `count` rows, for a snapshot to search.
    public struct View: Sendable {
        let chunks: [Chunk]
        /// Rows in the view.
        public let count: Int
        /// R: floats per key.
        public let dimension: Int
        /// Bytes per code row (R rounded up to a multiple of 32).
        public let stride: Int

        /// Code row [stride] of `row` (< count).
        @inline(__always)
        func codes(row: Int) -> UnsafePointer<Int8> {
            UnsafePointer(chunks[row >> QuantizedKeys.chunkShift].codes + (row & (QuantizedKeys.chunkRows - 1)) * stride)
        }

        /// Scales from `row` (< count) to the end of its chunk.
        @inline(__always)
        func scales(row: Int) -> UnsafePointer<Float> {
            UnsafePointer(chunks[row >> QuantizedKeys.chunkShift].scales + (row & (QuantizedKeys.chunkRows - 1)))
        }

        /// Codes of `row` as integers, without the padding (for tests and checks).
        public func codeRow(_ row: Int) -> [Int8] {
            guard row >= 0, row < count else { return [] }
            return Array(UnsafeBufferPointer(start: codes(row: row), count: dimension))
        }

        /// Scale of `row`, nil when out of range.
        public func rowScale(_ row: Int) -> Float? { row >= 0 && row < count ? scales(row: row)[0] : nil }
    }

    static let chunkShift = 16
    /// R: floats per key.
    public let dimension: Int
    /// Bytes per code row.
    public let stride: Int
    private var chunks: [Chunk] = []
    /// Rows stored.
    public private(set) var count = 0

    /// An empty copy for keys of `dimension` floats (at least 1).
    public init(dimension: Int) {
        precondition(dimension > 0, "QuantizedKeys: dimension \(dimension)")
        self.dimension = dimension
        stride = (dimension + 31) / 32 * 32
    }

    /// The copy of `rows` key rows [rows, R].
    public convenience init(keys: UnsafePointer<Float>, rows: Int, dimension: Int) {
        self.init(dimension: dimension)
        append(keys, rows: rows)
    }

    /// The current rows, for a snapshot.
    public var view: View { View(chunks: chunks, count: count, dimension: dimension, stride: stride) }

    /// Quantizes and appends `n` key rows [n, R]. Large appends (the build at open) run
    /// one chunk at a time per thread (`parallelFor`, `Threads.count` threads).
    public func append(_ keys: UnsafePointer<Float>, rows n: Int) {
        guard n > 0 else { return }
        let first = count, end = count + n
        while chunks.count * Self.chunkRows < end { chunks.append(Chunk(stride: stride)) }
        let firstChunk = first >> Self.chunkShift, lastChunk = (end - 1) >> Self.chunkShift
        let work = { (i: Int) in
            let c = firstChunk + i
            let lo = max(first, c * Self.chunkRows), hi = min(end, (c + 1) * Self.chunkRows)
            for row in lo..<hi { self.store(row: row, from: keys + (row - first) * self.dimension) }
        }
        let parts = lastChunk - firstChunk + 1
        if parts == 1 || n < KeySearch.parallelThreshold { for i in 0..<parts { work(i) } } else { parallelFor(parts, work) }
        count = end
    }

    /// Requantizes `row` (< count) from `key` [R]. Only for rows no published view
    /// reaches yet, or before the first publish (the sentinel repair at open).
    public func replace(row: Int, from key: UnsafePointer<Float>) {
        guard row >= 0, row < count else { return }
        store(row: row, from: key)
    }

    private func store(row: Int, from key: UnsafePointer<Float>) {
        let chunk = chunks[row >> Self.chunkShift], i = row & (Self.chunkRows - 1)
        let codes = chunk.codes + i * stride
        chunk.scales[i] = Self.quantize(key, dimension, into: codes)
        for j in dimension..<stride { codes[j] = 0 }
    }

    /// Symmetric int8 quantization of `x` [n] into `codes` [n]; returns the scale
    /// (max |x| / 127 over the finite values, 0 when there are none or all are 0).
    /// Total: NaN and ±infinity code 0, so hostile keys or queries never trap.
    static func quantize(_ x: UnsafePointer<Float>, _ n: Int, into codes: UnsafeMutablePointer<Int8>) -> Float {
        // Written with integer bit patterns and selects so that LLVM vectorizes both loops
        // (float max reductions and checked float -> int conversions would stay scalar).
        // |x| as bits orders like |x|; finite exactly when below the infinity pattern.
        var top: UInt32 = 0
        for i in 0..<n {
            let b = x[i].bitPattern & 0x7FFF_FFFF
            top = max(top, b < 0x7F80_0000 ? b : 0)
        }
        let m = Float(bitPattern: top)
        guard m > 0 else {
            codes.initialize(repeating: 0, count: n)
            return 0
        }
        let inverse = 127 / m
        for i in 0..<n {
            let finite = x[i].bitPattern & 0x7FFF_FFFF < 0x7F80_0000
            // Within [-127, 127] for finite x (|x| <= m); clamped anyway, since a subnormal
            // m makes `inverse` infinite. Adding 1.5 * 2^23 rounds to the nearest integer,
            // ties to even, into the low mantissa bits: the low byte is the code. A NaN
            // (0 * infinite inverse) has low byte 0.
            let v = min(max(x[i] * inverse, -127), 127)
            codes[i] = Int8(truncatingIfNeeded: ((finite ? v : 0) + 12_582_912).bitPattern)
        }
        return m / 127
    }
}
