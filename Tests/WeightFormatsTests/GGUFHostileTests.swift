// Hostile GGUF files: each validation rule of the reader is triggered by byte surgery on a
// writer-made file and must produce its specific error (case, key/tensor, offset). Then a
// truncation sweep and a seeded byte-flipping fuzz: never a crash, and a cut file is
// always an error.
import Foundation
import Testing
import TestSupport
import WeightFormats

/// A small valid file and where its fields are, for surgery.
struct HostileSample {
    var bytes: [UInt8]
    init() throws {
        var w = GGUFWriter()
        w.set("general.architecture", "llama")
        w.set("k.flag", .bool(true))
        w.set("k.list", .array(.string(["x", "y"])))
        w.set("k.num", .uint32(7))
        try w.addTensor(name: "ta", shape: [32, 2], type: .f32, values: (0..<64).map { Float($0) })
        try w.addTensor(name: "tb", shape: [64, 2], type: .q8_0, values: (0..<128).map { Float($0) / 10 })
        try w.addTensor(name: "tc", shape: [32], type: .q4_1, values: (0..<32).map { Float($0) })
        bytes = try w.serialized()
    }

    /// Offset of the length prefix of the GGUF string `s` (its first occurrence).
    func find(_ s: String) -> Int {
        var pattern = [UInt8]()
        pattern.appendLE(UInt64(s.utf8.count)); pattern += Array(s.utf8)
        for i in 0...(bytes.count - pattern.count) where bytes[i..<(i + pattern.count)].elementsEqual(pattern) { return i }
        fatalError("test sample has no string \(s)")   // a bug in the test, not input
    }
    /// Offset of a metadata key's type field.
    func keyType(_ key: String) -> Int { find(key) + 8 + key.utf8.count }
    /// Offsets in a tensor's directory entry (the sample's tensors have 1 or 2 dims).
    func tensorNDims(_ name: String) -> Int { find(name) + 8 + name.utf8.count }
    func tensorDims(_ name: String) -> Int { tensorNDims(name) + 4 }
    func tensorType(_ name: String, dims: Int) -> Int { tensorDims(name) + 8 * dims }
    func tensorOffset(_ name: String, dims: Int) -> Int { tensorType(name, dims: dims) + 4 }

    mutating func put<T: FixedWidthInteger>(_ v: T, at o: Int) {
        withUnsafeBytes(of: v.littleEndian) { for (i, b) in $0.enumerated() { bytes[o + i] = b } }
    }
    func u64(at o: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(bytes[o + $1]) << (8 * UInt64($1)) } }

    func parse(limits: GGUFLimits = GGUFLimits()) throws -> GGUFFile {
        try GGUFFile(file: MappedFile(copying: bytes, path: "hostile.gguf"), limits: limits)
    }
    func error(limits: GGUFLimits = GGUFLimits(), sourceLocation: SourceLocation = #_sourceLocation) -> WeightFormatError? {
        expectWeightError({ _ = try parse(limits: limits) }, sourceLocation: sourceLocation)
    }
}

private let P = "hostile.gguf"

@Suite struct GGUFHostileTests {
    @Test func sampleIsValid() throws {
        let f = try HostileSample().parse()
        #expect(f.tensors.map(\.name) == ["ta", "tb", "tc"] && f.metadataKeys.count == 4)
    }

    @Test func badMagicAndVersion() throws {
        var s = try HostileSample()
        s.bytes[3] = UInt8(ascii: "X")
        #expect(s.error() == .badMagic(path: P, expected: "GGUF", actual: "\"GGUX\""))
        for (v, hintWord) in [(UInt32(1), "obsolete"), (4, "supported"), (0x0300_0000, "big-endian")] {
            var t = try HostileSample()
            t.put(v, at: 4)
            guard case let .unsupportedVersion(path, version, hint)? = t.error() else { Issue.record("version \(v)"); continue }
            #expect(path == P && version == v && hint.contains(hintWord))
        }
    }

    @Test func absurdCountsAreCappedBeforeAllocating() throws {
        var s = try HostileSample()
        s.put(UInt64.max, at: 8)
        guard case let .limitExceeded(_, what, offset, _, actual)? = s.error() else { Issue.record("tensor count"); return }
        #expect(what.hasPrefix("tensor count") && offset == 8 && actual == UInt64.max)
        s = try HostileSample()
        s.put(UInt64(1 << 40), at: 16)
        guard case let .limitExceeded(_, what2, offset2, _, _)? = s.error() else { Issue.record("kv count"); return }
        #expect(what2.hasPrefix("metadata key/value count") && offset2 == 16)
        // A count below the cap but more than the rest of the file could hold.
        s = try HostileSample()
        s.put(UInt64(100_000), at: 16)
        guard case let .limitExceeded(_, what3, _, limit3, _)? = s.error() else { Issue.record("kv count vs file"); return }
        #expect(what3.contains("bytes left") && limit3 < 100)
    }

    @Test func absurdStringAndArrayLengths() throws {
        var s = try HostileSample()
        let key = s.find("k.num")
        s.put(UInt64(1) << 40, at: key)
        guard case let .limitExceeded(_, what, offset, _, actual)? = s.error() else { Issue.record("string"); return }
        #expect(what.hasPrefix("string length") && offset == key && actual == 1 << 40)
        s = try HostileSample()
        let count = s.keyType("k.list") + 8   // type u32, element type u32, then the count
        #expect(s.u64(at: count) == 2)
        s.put(UInt64(1) << 50, at: count)
        #expect(s.error() == .limitExceeded(path: P, what: "array length of 'k.list'", offset: count,
                                            limit: (s.bytes.count - count - 8) / 8, actual: 1 << 50))
        var limits = GGUFLimits()
        limits.maxTensorNameLength = 1
        let fresh = try HostileSample()
        guard case let .limitExceeded(_, what4, offset4, limit4, actual4)? = fresh.error(limits: limits) else {
            Issue.record("name cap"); return
        }
        #expect(what4.contains("tensor 0 name") && offset4 == fresh.find("ta") && limit4 == 1 && actual4 == 2)
    }

    @Test func unknownValueTypes() throws {
        var s = try HostileSample()
        let t = s.keyType("k.num")
        s.put(UInt32(13), at: t)
        #expect(s.error() == .invalidValueType(path: P, key: "k.num", offset: t, actual: 13))
        s = try HostileSample()
        let e = s.keyType("k.list") + 4
        s.put(UInt32(99), at: e)
        #expect(s.error() == .invalidValueType(path: P, key: "k.list", offset: e, actual: 99))
        // Arrays nested deeper than the cap.
        var w = GGUFWriter()
        w.set("deep", .array(.array([.array([.array([.array([.uint8([1])])])])])))
        let f = MappedFile(copying: try w.serialized(), path: P)
        guard case let .invalidValueType(_, key, _, actual)? = expectWeightError({ _ = try GGUFFile(file: f) }) else { return }
        #expect(key == "deep" && actual == 9)
    }

    @Test func invalidBoolAndUTF8() throws {
        var s = try HostileSample()
        let b = s.keyType("k.flag") + 4
        s.bytes[b] = 2
        #expect(s.error() == .invalidBool(path: P, key: "k.flag", offset: b, actual: 2))
        var w = GGUFWriter()
        w.set("flags", .array(.bool([true, false, true])))
        var bytes = try w.serialized()
        let second = 24 + 8 + 5 + 4 + 4 + 8 + 1   // header, key, type, element type, count, first bool
        #expect(bytes[second] == 0)
        bytes[second] = 7
        #expect(expectWeightError { _ = try GGUFFile(file: MappedFile(copying: bytes, path: P)) }
            == .invalidBool(path: P, key: "flags", offset: second, actual: 7))
        s = try HostileSample()
        let k = s.find("k.num")
        s.bytes[k + 8] = 0xff
        #expect(s.error() == .invalidUTF8(path: P, offset: k, context: "metadata key 3"))
    }

    @Test func duplicateKeysAndTensorNames() throws {
        // Rename "k.flag" (6 bytes) to "k.list": the original k.list, later in the file, is
        // then the duplicate.
        var s = try HostileSample()
        let flag = s.find("k.flag"), list = s.find("k.list")
        for (i, c) in "k.list".utf8.enumerated() { s.bytes[flag + 8 + i] = c }
        #expect(s.error() == .duplicateKey(path: P, key: "k.list", offset: list))
        s = try HostileSample()
        let tb = s.find("tb")
        s.bytes[tb + 9] = UInt8(ascii: "a")
        #expect(s.error() == .duplicateTensor(path: P, tensor: "ta", offset: tb))
    }

    @Test func shapeRules() throws {
        var s = try HostileSample()
        s.put(UInt32(5), at: s.tensorNDims("tb"))
        #expect(s.error() == .limitExceeded(path: P, what: "dimension count of tensor 'tb'", offset: s.tensorNDims("tb"), limit: 4, actual: 5))
        s = try HostileSample()
        s.put(UInt64.max, at: s.tensorDims("tb") + 8)
        #expect(s.error() == .invalidShape(path: P, tensor: "tb", offset: s.tensorNDims("tb"), shape: [64, -1], reason: "dimension -1 is negative"))
        s = try HostileSample()
        s.put(UInt64(1) << 40, at: s.tensorDims("ta")); s.put(UInt64(1) << 40, at: s.tensorDims("ta") + 8)
        #expect(s.error() == .sizeOverflow(path: P, tensor: "ta", shape: [1 << 40, 1 << 40], type: "F32"))
        s = try HostileSample()
        s.put(UInt64(1) << 62, at: s.tensorDims("ta")); s.put(UInt64(1), at: s.tensorDims("ta") + 8)
        #expect(s.error() == .sizeOverflow(path: P, tensor: "ta", shape: [1 << 62, 1], type: "F32"))
        s = try HostileSample()
        s.put(UInt64(48), at: s.tensorDims("tb"))
        #expect(s.error() == .shapeNotBlockMultiple(path: P, tensor: "tb", type: "Q8_0", rowLength: 48, blockSize: 32))
        s = try HostileSample()
        let typeAt = s.tensorType("tc", dims: 1)
        s.put(UInt32(4), at: typeAt)
        #expect(s.error() == .unknownTensorType(path: P, tensor: "tc", offset: typeAt, actual: 4))
    }

    @Test func dataPlacementRules() throws {
        var s = try HostileSample()
        s.put(UInt64(8), at: s.tensorOffset("tc", dims: 1))
        #expect(s.error() == .misaligned(path: P, tensor: "tc", offset: 8, alignment: 32))
        s = try HostileSample()
        let dataStart = try s.parse().dataOffset
        s.put(UInt64(1) << 20, at: s.tensorOffset("tc", dims: 1))
        #expect(s.error() == .outOfFile(path: P, tensor: "tc", start: dataStart + (1 << 20), end: dataStart + (1 << 20) + 20, limit: s.bytes.count))
        s = try HostileSample()
        s.put(UInt64.max - 31, at: s.tensorOffset("tc", dims: 1))
        guard case let .outOfFile(_, tensor, _, _, _)? = s.error() else { Issue.record("huge offset"); return }
        #expect(tensor == "tc")
        s = try HostileSample()
        let tbOffset = s.u64(at: s.tensorOffset("tb", dims: 2))
        s.put(tbOffset, at: s.tensorOffset("tc", dims: 1))
        #expect(s.error() == .overlap(path: P, tensor: "tc", other: "tb", offset: dataStart + Int(tbOffset)))
        s = try HostileSample()
        s.put(UInt64(32), at: s.tensorOffset("tb", dims: 2))   // inside ta's 256 bytes
        #expect(s.error() == .overlap(path: P, tensor: "tb", other: "ta", offset: dataStart + 32))
    }

    @Test func anEmptyTensorCannotHideAnOverlap() throws {
        var w = GGUFWriter()
        try w.addTensor(name: "ta", shape: [32, 2], type: .f32, values: [Float](repeating: 1, count: 64))
        try w.addTensor(name: "te", shape: [0], type: .f32, values: [])
        try w.addTensor(name: "tf", shape: [8], type: .f32, values: [Float](repeating: 2, count: 8))
        var s = try HostileSample()
        s.bytes = try w.serialized()
        let f = try s.parse()
        let te = try #require(f.tensor("te"))
        let values = try f.dequantize(te)
        #expect(te.elementCount == 0 && values.isEmpty)
        s.put(UInt64(64), at: s.tensorOffset("te", dims: 1))
        s.put(UInt64(96), at: s.tensorOffset("tf", dims: 1))
        #expect(s.error() == .overlap(path: P, tensor: "tf", other: "ta", offset: f.dataOffset + 96))
    }

    @Test func unreadablePaths() throws {
        let dir = try Fixtures.temporaryDirectory("gguf-paths")
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("missing.gguf").path
        #expect(expectWeightError { _ = try GGUFFile(path: missing) } == .io(path: missing, operation: "open", errno: ENOENT))
        #expect(expectWeightError { _ = try GGUFFile(path: dir.path) } == .io(path: dir.path, operation: "open (not a regular file)", errno: EINVAL))
        let empty = dir.appendingPathComponent("empty.gguf").path
        #expect(FileManager.default.createFile(atPath: empty, contents: Data()))
        #expect(expectWeightError { _ = try GGUFFile(path: empty) } == .truncated(path: empty, offset: 0, needed: 4, available: 0, context: "magic"))
        #expect(expectWeightError { _ = try SafetensorsFile(path: empty) } == .truncated(path: empty, offset: 0, needed: 8, available: 0, context: "header length"))
        let description = "\(WeightFormatError.io(path: missing, operation: "open", errno: ENOENT))"
        #expect(description.contains(missing) && description.contains("No such file"), "\(description)")
    }

    @Test func badAlignmentValues() throws {
        for v: GGUFValue in [.uint32(0), .uint32(48), .uint64(32), .int32(32)] {
            var w = GGUFWriter()
            w.set("general.alignment", v)
            var bytes = [UInt8]()
            bytes += Array("GGUF".utf8); bytes.appendLE(UInt32(3)); bytes.appendLE(UInt64(0)); bytes.appendLE(UInt64(1))
            bytes.appendGGUFString("general.alignment"); bytes.appendLE(v.type.rawValue); bytes.appendGGUFValue(v)
            let e = expectWeightError { _ = try GGUFFile(file: MappedFile(copying: bytes, path: P)) }
            guard case let .badMetadata(_, key, expected, _)? = e else { Issue.record("alignment \(v)"); continue }
            #expect(key == "general.alignment" && expected.contains("power of two"))
        }
    }

    @Test func truncationSweepAlwaysErrs() throws {
        for sample in [try HostileSample().bytes, try sampleWriter().0.serialized()] {
            let full = try GGUFFile(file: MappedFile(copying: sample))
            let dataEnd = full.tensors.map { $0.offset + $0.byteCount }.max()!
            var errors = 0
            for cut in 0..<sample.count {
                let f = MappedFile(copying: Array(sample[0..<cut]), path: P)
                do {
                    let g = try GGUFFile(file: f)
                    #expect(cut >= dataEnd, "cut at \(cut) parsed, but tensor data ends at \(dataEnd)")
                    #expect(g.tensors == full.tensors)
                } catch is WeightFormatError {
                    errors += 1
                    #expect(cut < dataEnd, "cut at \(cut) failed though all data is present")
                }
            }
            #expect(errors == dataEnd)
        }
    }

    @Test func byteFlipFuzzNeverCrashes() throws {
        let (w, _) = try sampleWriter()
        let sample = try w.serialized()
        let headerEnd = try GGUFFile(file: MappedFile(copying: sample)).dataOffset
        var rng = SeededRandom(seed: 2024)
        var parsed = 0
        for _ in 0..<3000 {
            var b = sample
            for _ in 0..<(1 + rng.below(4)) { b[rng.below(headerEnd)] ^= UInt8(1 + rng.below(255)) }
            do {
                let f = try GGUFFile(file: MappedFile(copying: b, path: P))
                parsed += 1
                for t in f.tensors {
                    #expect(t.offset >= f.dataOffset && t.offset + t.byteCount <= b.count)
                    if t.type.isSupported { _ = try f.dequantize(t) }
                }
            } catch is WeightFormatError {
            }
        }
        print("fuzz: \(parsed) of 3000 damaged headers still parsed (bytes in string payloads)")
    }
}
