// Hostile safetensors files: every validation rule with its specific error, a truncation
// sweep and a seeded byte-flipping fuzz of the header.
import Testing
import TestSupport
import WeightFormats

private let P = "hostile.safetensors"

/// u64 LE header length, the header, then `data`.
func safetensorsBytes(_ header: String, data: [UInt8]) -> [UInt8] {
    var out = [UInt8]()
    out.appendLE(UInt64(header.utf8.count))
    out += Array(header.utf8)
    return out + data
}

private func open(_ bytes: [UInt8]) throws -> SafetensorsFile {
    try SafetensorsFile(file: MappedFile(copying: bytes, path: P))
}

private func error(_ header: String, dataCount: Int = 24, sourceLocation: SourceLocation = #_sourceLocation) -> WeightFormatError? {
    expectWeightError({ _ = try open(safetensorsBytes(header, data: [UInt8](repeating: 0, count: dataCount))) },
                      sourceLocation: sourceLocation)
}

/// A valid header: a F32 [2, 2] at 0..<16 and a BF16 [4] at 16..<24.
private let good = #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"BF16","shape":[4],"data_offsets":[16,24]}}"#

@Suite struct SafetensorsHostileTests {
    @Test func validSampleReads() throws {
        var data = [UInt8]()
        for v: Float in [1, -2, 3.5, 0] { data.appendLE(v.bitPattern) }
        for v: Float in [1, -2, 0.5, 256] { data.appendLE(floatToBF16(v)) }
        let f = try open(safetensorsBytes(good, data: data))
        #expect(f.metadata == ["format": "pt"] && f.names == ["a", "b"])
        #expect(try f.floats("a") == [1, -2, 3.5, 0])
        #expect(try f.floats("b") == [1, -2, 0.5, 256])
        #expect(f.tensors["a"]?.byteRange == (8 + good.utf8.count)..<(8 + good.utf8.count + 16))
    }

    @Test func headerLength() {
        var b = [UInt8]()
        b.appendLE(UInt64(1000)); b += Array("{}".utf8)
        #expect(expectWeightError { _ = try open(b) } == .truncated(path: P, offset: 8, needed: 1000, available: 2, context: "JSON header"))
        b = []; b.appendLE(UInt64(1) << 40)
        #expect(expectWeightError { _ = try open(b) } == .limitExceeded(path: P, what: "header length", offset: 0,
                                                                       limit: SafetensorsFile.maxHeaderLength, actual: 1 << 40))
        #expect(expectWeightError { _ = try open([1, 2, 3]) } == .truncated(path: P, offset: 0, needed: 8, available: 3, context: "header length"))
    }

    @Test func invalidJSON() {
        guard case let .invalidHeader(_, _, reason)? = error(#"{"a": {"#) else { Issue.record("truncated JSON"); return }
        #expect(reason.hasPrefix("invalid JSON"))
        #expect(error("[1, 2]") == .invalidHeader(path: P, tensor: "", reason: "the JSON header is not an object"))
        #expect(error(#"{"a": 3}"#) == .invalidHeader(path: P, tensor: "a", reason: "entry is not an object"))
        #expect(error(#"{"__metadata__": {"k": 1}}"#) == .invalidHeader(path: P, tensor: "__metadata__", reason: "value of 'k' is not a string"))
        #expect(error(#"{"a": {"shape": [1], "data_offsets": [0, 4]}}"#) == .invalidHeader(path: P, tensor: "a", reason: "missing or non-string 'dtype'"))
    }

    @Test func unknownDType() {
        guard case let .unsupportedType(path, tensor, type, _)? = error(#"{"a":{"dtype":"F7","shape":[1],"data_offsets":[0,1]}}"#) else {
            Issue.record("dtype"); return
        }
        #expect(path == P && tensor == "a" && type == "F7")
    }

    @Test func shapeRules() {
        for shape in ["[-1, 4]", "[1.5]", "[true]", "[\"2\"]", "[18446744073709551615]"] {
            guard case let .invalidHeader(_, tensor, reason)? = error(#"{"a":{"dtype":"F32","shape":\#(shape),"data_offsets":[0,16]}}"#) else {
                Issue.record("shape \(shape)"); continue
            }
            #expect(tensor == "a" && reason.contains("not a non-negative integer"), "\(shape)")
        }
        #expect(error(#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}}"#)
            == .sizeOverflow(path: P, tensor: "a", shape: [1 << 32, 1 << 32], type: "F32"))
        #expect(error(#"{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}}"#)
            == .invalidHeader(path: P, tensor: "a", reason: "shape [2, 3] of F32 takes 24 bytes, but data_offsets [0, 16] span 16"))
    }

    @Test func rangeRules() {
        let h = 8 + #"{"a":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}}"#.utf8.count
        #expect(error(#"{"a":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}}"#)
            == .outOfFile(path: P, tensor: "a", start: h, end: h + 32, limit: h + 24))
        guard case let .invalidHeader(_, tensor, _)? = error(#"{"a":{"dtype":"U8","shape":[0],"data_offsets":[8,4]}}"#) else {
            Issue.record("begin > end"); return
        }
        #expect(tensor == "a")
        let overlapping = #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#
        #expect(error(overlapping) == .overlap(path: P, tensor: "b", other: "a", offset: 8 + overlapping.utf8.count + 8))
        // An empty tensor between the two cannot hide the overlap.
        let hidden = #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"e":{"dtype":"U8","shape":[0],"data_offsets":[8,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}"#
        #expect(error(hidden) == .overlap(path: P, tensor: "b", other: "a", offset: 8 + hidden.utf8.count + 12))
    }

    @Test func duplicateNames() {
        let dup = #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}, "a" :{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#
        let second = dup.utf8.count - #""a" :{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#.utf8.count
        #expect(error(dup) == .duplicateTensor(path: P, tensor: "a", offset: 8 + second))
        // The same name spelled with an escape is still the same name.
        let escaped = #"{"ab":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a\u0062":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#
        guard case let .duplicateTensor(_, tensor, _)? = error(escaped) else { Issue.record("escaped duplicate"); return }
        #expect(tensor == "ab")
        // Nested keys named alike are not duplicates.
        #expect((try? open(safetensorsBytes(#"{"__metadata__":{"a":"x"},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#, data: [7]))) != nil)
    }

    @Test func truncationSweepAlwaysErrs() throws {
        let sample = safetensorsBytes(good, data: [UInt8](repeating: 1, count: 24))
        _ = try open(sample)
        for cut in 0..<sample.count {
            #expect(expectWeightError { _ = try open(Array(sample[0..<cut])) } != nil, "cut at \(cut)")
        }
    }

    @Test func byteFlipFuzzNeverCrashes() throws {
        let sample = safetensorsBytes(good, data: [UInt8](repeating: 1, count: 24))
        var rng = SeededRandom(seed: 7)
        var parsed = 0
        for _ in 0..<3000 {
            var b = sample
            for _ in 0..<(1 + rng.below(3)) { b[rng.below(8 + good.utf8.count)] ^= UInt8(1 + rng.below(255)) }
            do {
                let f = try open(b)
                parsed += 1
                for (name, t) in f.tensors {
                    #expect(t.byteRange.upperBound <= b.count)
                    if [.f32, .f16, .bf16, .f64].contains(t.dtype) { _ = try f.floats(name) }
                }
            } catch is WeightFormatError {
            }
        }
        print("safetensors fuzz: \(parsed) of 3000 damaged headers still parsed")
    }
}
