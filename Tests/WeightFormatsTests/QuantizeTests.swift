// Reference quantizers: round trips within each format's error bound, hand-checked
// blocks, re-quantization of the real file's Q8_0 embedding reproducing its bytes, and
// refusal of bad input.
import Foundation
import Testing
import TestSupport
import WeightFormats

@Suite struct QuantizeTests {
    /// Largest error allowed for one block of `x` after a round trip through `type`.
    static func bound(_ type: GGMLType, _ x: ArraySlice<Float>) -> Float {
        let amax = x.map(abs).max()!, lo = x.min()!, hi = x.max()!
        let half: Float = 1.0 / 1024   // fp16 relative rounding (2^-11), doubled for slack
        switch type {
        case .f32: return 0
        case .f16: return amax * half
        case .bf16: return amax / 128
        case .q8_0: return amax / 127 * (0.5 + 127 * half) + 1e-7
        case .q4_0: return amax / 8 * (1 + 8 * half) + 1e-7
        case .q5_0: return amax / 16 * (1 + 16 * half) + 1e-7
        case .q4_1: return (hi - lo) / 15 * (0.5 + 15 * half) + abs(lo) * half + 1e-6
        case .q5_1: return (hi - lo) / 31 * (0.5 + 31 * half) + abs(lo) * half + 1e-6
        default: return .nan
        }
    }

    @Test(arguments: GGMLType.allCases.filter(\.isQuantizable))
    func roundTripWithinBound(type: GGMLType) throws {
        var rng = SeededRandom(seed: 42 + UInt64(type.rawValue))
        // Blocks of varied scale and offset, plus an all-zero and a constant block.
        var x: [Float] = []
        for b in 0..<64 {
            let scale = Float(b % 7 + 1) * 0.37, shift = b % 3 == 0 ? Float(b) * 0.1 : 0
            x += (0..<32).map { _ in rng.float() * scale + shift }
        }
        x += [Float](repeating: 0, count: 32) + [Float](repeating: 0.75, count: 32)
        let q = try quantize(type, x)
        #expect(q.count == x.count / type.blockSize * type.bytesPerBlock)
        var y = [Float](repeating: .nan, count: x.count)
        q.withUnsafeBytes { dequantizeRow(type, $0.baseAddress!, &y, count: x.count) }
        var worst: Float = 0, worstRatio: Float = 0
        for b in 0..<(x.count / 32) {
            let xs = x[(b * 32)..<(b * 32 + 32)], ys = y[(b * 32)..<(b * 32 + 32)]
            let err = zip(xs, ys).map { abs($0 - $1) }.max()!
            let bound = Self.bound(type, xs)
            worst = max(worst, err)
            if bound > 0 { worstRatio = max(worstRatio, err / bound) }
            #expect(err <= bound, "\(type) block \(b): largest |Δ| \(err) > bound \(bound)")
        }
        #expect(y.suffix(32).allSatisfy { abs($0 - 0.75) <= Self.bound(type, [0.75]) + 1e-3 }, "\(type): constant block")
        #expect(y[(y.count - 64)..<(y.count - 32)].allSatisfy { $0 == 0 }, "\(type): zero block")
        print("\(type): largest round-trip |Δ| \(worst), at \(worstRatio) of the bound")
    }

    /// Byte-for-byte against gguf-py's quantizers (QuantizedReference.swift).
    @Test(arguments: GGMLType.allCases.filter { $0.isQuantizable && $0 != .f32 })
    func matchesGGUFPyBytes(type: GGMLType) throws {
        let raw = hexBytes(QuantizedReference.inputsHex.filter { !$0.isWhitespace })
        let x = (0..<(raw.count / 4)).map { i in
            Float(bitPattern: UInt32(raw[4 * i]) | UInt32(raw[4 * i + 1]) << 8 | UInt32(raw[4 * i + 2]) << 16 | UInt32(raw[4 * i + 3]) << 24)
        }
        let expected = hexBytes(try #require(QuantizedReference.quantizedHex[type.name]).filter { !$0.isWhitespace })
        let ours = try quantize(type, x)
        #expect(ours.count == expected.count)
        let differing = zip(ours, expected).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset)
        #expect(differing.isEmpty, "\(type): \(differing.count) bytes differ, first at \(differing.first ?? -1) (block \((differing.first ?? 0) / type.bytesPerBlock))")
    }

    @Test func q8_0KnownBlock() throws {
        // amax 127 -> d = 1: every value rounds half away from zero, like roundf.
        var x = (0..<32).map { Float($0) - 15.5 }
        x[31] = 127
        let q = try quantize(.q8_0, x)
        #expect(q[0] == 0x00 && q[1] == 0x3c)   // fp16 1.0
        #expect(Array(q[2..<6]).map { Int8(bitPattern: $0) } == [-16, -15, -14, -13])
        #expect(Int8(bitPattern: q[33]) == 127)
    }

    @Test func q4_0UsesSignedMaxAndClamps() throws {
        // max |x| is -8 -> d = 1 (max / -8); +8 would be 16.5 -> clamped to 15 -> 7.
        var x = [Float](repeating: 0, count: 32)
        x[0] = -8; x[1] = 8; x[2] = 3.4; x[17] = -0.6
        let q = try quantize(.q4_0, x)
        #expect(halfToFloat(UInt16(q[0]) | UInt16(q[1]) << 8) == 1)
        var y = [Float](repeating: 0, count: 32)
        q.withUnsafeBytes { dequantizeRow(.q4_0, $0.baseAddress!, &y, count: 32) }
        #expect(y[0] == -8 && y[1] == 7 && y[2] == 3 && y[17] == -1 && y[5] == 0)
    }

    @Test func requantizingTheRealQ8_0EmbeddingGivesItsBytes() throws {
        let path = Fixtures.smolLM2.path
        guard FileManager.default.fileExists(atPath: path) else { throw MissingFixture(path: path) }
        let f = try GGUFFile(path: path)
        let t = try #require(f.tensor("token_embd.weight"))
        var differing = 0
        for row in [0, 1, 2, 100, 1000, 30000, 49151] {
            let values = try f.dequantize(t, rows: row..<(row + 1))
            let raw = Array(f.data(t)[(row * t.rowByteCount)..<((row + 1) * t.rowByteCount)])
            let again = try quantize(.q8_0, values)
            differing += zip(raw, again).filter { $0 != $1 }.count
        }
        #expect(differing == 0, "\(differing) bytes differ")
    }

    @Test func refusesBadInput() {
        #expect(expectWeightError { _ = try quantize(.q4_1, [Float](repeating: 1, count: 33)) } != nil)
        #expect(expectWeightError { _ = try quantize(.q8_0, [Float](repeating: .nan, count: 32)) } != nil)
        #expect(expectWeightError { _ = try quantize(.q4_1, [Float](repeating: .infinity, count: 32)) } != nil)
        #expect(expectWeightError { _ = try quantize(.q4_K, [Float](repeating: 1, count: 256)) } != nil)
    }

    @Test func extremeFiniteValuesDoNotTrap() throws {
        let x: [Float] = (0..<32).map { $0 % 2 == 0 ? Float.greatestFiniteMagnitude : -Float.greatestFiniteMagnitude }
        for type in GGMLType.allCases.filter(\.isQuantizable) { _ = try quantize(type, x) }
    }
}
