// GGUFWriter: every value type and tensor type round-trips through the reader; the real
// SmolLM2 file rewritten through the writer is byte-identical to the original.
import Foundation
import Testing
import TestSupport
import WeightFormats

/// A small file with one value of every type (nested arrays included) and one tensor of
/// every quantizable type; shared with the hostile-file tests.
func sampleWriter(seed: UInt64 = 1) throws -> (GGUFWriter, [String: [Float]]) {
    var w = GGUFWriter()
    w.set("general.architecture", .string("llama"))
    w.set("t.u8", .uint8(200)); w.set("t.i8", .int8(-100))
    w.set("t.u16", .uint16(60000)); w.set("t.i16", .int16(-30000))
    w.set("t.u32", .uint32(4_000_000_000)); w.set("t.i32", .int32(-2_000_000_000))
    w.set("t.u64", .uint64(UInt64.max)); w.set("t.i64", .int64(Int64.min))
    w.set("t.f32", .float32(1.5)); w.set("t.f64", .float64(-2.25e100))
    w.set("t.bool", .bool(true)); w.set("t.str", .string("héllo ✓"))
    w.set("t.arr.u8", .array(.uint8([1, 2, 3]))); w.set("t.arr.i16", .array(.int16([-1, 2])))
    w.set("t.arr.f64", .array(.float64([0.5, -1]))); w.set("t.arr.bool", .array(.bool([true, false, true])))
    w.set("t.arr.str", .array(.string(["a", "", "Ġ t"]))); w.set("t.arr.empty", .array(.int32([])))
    w.set("t.arr.nested", .array(.array([.uint32([1, 2]), .string(["x"]), .array([.float32([3])])])))
    w.set("t.int", 42); w.set("t.float", Float(0.125)); w.set("t.strings", ["p", "q"])
    var rng = SeededRandom(seed: seed)
    var values: [String: [Float]] = [:]
    for type in GGMLType.allCases.filter(\.isQuantizable) {
        let shape = [64, 3]
        let v = (0..<192).map { _ in rng.float() }
        let name = "w.\(type.name.lowercased())"
        try w.addTensor(name: name, shape: shape, type: type, values: v)
        values[name] = v
    }
    return (w, values)
}

@Suite struct GGUFWriterTests {
    @Test func everyValueAndTensorTypeRoundTrips() throws {
        let (w, values) = try sampleWriter()
        let dir = try Fixtures.temporaryDirectory("gguf-writer")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("sample.gguf").path
        try w.write(to: path)
        let f = try GGUFFile(path: path)
        #expect(f.version == 3 && f.alignment == 32)
        #expect(f.metadataKeys == w.metadataKeys)
        #expect(f.metadata == w.metadata)
        #expect(try f.int("t.int") == 42 && f.metadata["t.int"] == .uint32(42))
        #expect(try f.ints("t.arr.u8") == [1, 2, 3])
        #expect(f.tensors.map(\.name) == w.tensors.map(\.name))
        for t in f.tensors {
            #expect(t.offset % 32 == 0 && t.shape == [64, 3])
            #expect(Array(f.data(t)) == w.tensors.first { $0.name == t.name }!.bytes)
            let x = values[t.name]!
            let q = try quantize(t.type, x)
            var expected = [Float](repeating: 0, count: x.count)
            q.withUnsafeBytes { dequantizeRow(t.type, $0.baseAddress!, &expected, count: x.count) }
            #expect(try f.dequantize(t) == expected, "\(t.name)")
        }
    }

    @Test func writeErrorsNameThePath() throws {
        let path = "/nonexistent-dir-\(UInt32.random(in: 0...UInt32.max))/x.gguf"
        guard case let .io(p, operation, err)? = expectWeightError({ try GGUFWriter().write(to: path) }) else { return }
        #expect(p.hasPrefix(path) && operation == "open" && err == ENOENT)
    }

    @Test func alignmentAndVersion2() throws {
        var (w, _) = try sampleWriter()
        w.alignment = 256
        w.version = 2
        let f = try GGUFFile(file: MappedFile(copying: try w.serialized()))
        #expect(f.version == 2 && f.alignment == 256 && f.dataOffset % 256 == 0)
        #expect(f.tensors.allSatisfy { $0.offset % 256 == 0 })
        #expect(f.file.bytes.count % 256 == 0)
    }

    @Test func emptyFileHasNoTensors() throws {
        let f = try GGUFFile(file: MappedFile(copying: try GGUFWriter().serialized()))
        #expect(f.tensors.isEmpty && f.metadata.isEmpty && f.file.bytes.count == 32)
    }

    @Test func refusesBadTensors() {
        var w = GGUFWriter()
        #expect(expectWeightError { try w.addTensor(name: "a", shape: [33], type: .q8_0, values: [Float](repeating: 0, count: 33)) } != nil)
        #expect(expectWeightError { try w.addTensor(name: "a", shape: [32, 2], type: .f32, values: [Float](repeating: 0, count: 32)) } != nil)
        #expect(expectWeightError { try w.addTensor(name: String(repeating: "n", count: 64), shape: [1], type: .f32, values: [0]) } != nil)
        #expect(expectWeightError { try w.addTensor(name: "b", shape: [1, 1, 1, 1, 1], type: .f32, values: [0]) } != nil)
        #expect(expectWeightError { try w.addTensor(name: "c", shape: [32], type: .q4_0, bytes: [0]) } != nil)
        #expect((try? w.addTensor(name: "d", shape: [2], type: .f32, values: [1, 2])) != nil)
        #expect(expectWeightError { try w.addTensor(name: "d", shape: [2], type: .f32, values: [1, 2]) } != nil)
        w.set("general.alignment", .uint32(48))
        #expect(expectWeightError { _ = try w.serialized() } != nil)
    }

    @Test func rewritingTheRealFileIsByteIdentical() throws {
        let path = Fixtures.smolLM2.path
        guard FileManager.default.fileExists(atPath: path) else { throw MissingFixture(path: path) }
        let f = try GGUFFile(path: path)
        var w = GGUFWriter()
        for k in f.metadataKeys { w.set(k, f.metadata[k]!) }
        for t in f.tensors { try w.addTensor(name: t.name, shape: t.shape, type: t.type, bytes: Array(f.data(t))) }
        let out = try w.serialized()
        #expect(out.count == f.file.bytes.count, "size \(out.count) vs \(f.file.bytes.count)")
        let same = out.count == f.file.bytes.count && out.withUnsafeBytes { memcmp($0.baseAddress!, f.file.bytes.baseAddress!, out.count) == 0 }
        if !same {
            let first = zip(out, f.file.bytes).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            Issue.record("rewritten file differs, first at byte \(String(describing: first))")
        }
    }
}
