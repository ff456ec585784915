// Fast dequantization against its naive twin on random blocks of every supported type,
// and the fp16/bf16 conversions on every bit pattern.
import Testing
import TestSupport
import WeightFormats

@Suite struct DequantizeTests {
    @Test func halfConversionMatchesNaiveOnAllBitPatterns() {
        var mismatches = 0
        for bits in 0...UInt16.max {
            let a = halfToFloat(bits), b = halfToFloatNaive(bits)
            if a.isNaN ? !b.isNaN : (a != b || a.sign != b.sign) { mismatches += 1 }
            if !a.isNaN { #expect(floatToHalf(a) == bits) }
        }
        #expect(mismatches == 0)
        #expect(halfToFloat(0x3c00) == 1 && halfToFloat(0xc000) == -2 && halfToFloat(0x0001) == 5.9604645e-08)
    }

    @Test func bf16RoundsToNearestEven() {
        #expect(floatToBF16(1) == 0x3f80)
        #expect(floatToBF16(Float(bitPattern: 0x3f80_8000)) == 0x3f80)   // tie, even stays
        #expect(floatToBF16(Float(bitPattern: 0x3f81_8000)) == 0x3f82)   // tie, odd rounds up
        #expect(floatToBF16(Float(bitPattern: 0x3f80_8001)) == 0x3f81)
        #expect(bf16ToFloat(floatToBF16(.nan)).isNaN)
        #expect(bf16ToFloat(0xc040) == -3)
    }

    @Test(arguments: GGMLType.allCases.filter(\.hasFastPath))
    func fastMatchesNaive(type: GGMLType) {
        var rng = SeededRandom(seed: UInt64(type.rawValue) + 7)
        let blocks = 37
        let count = blocks * type.blockSize
        var raw = rng.bytes(blocks * type.bytesPerBlock)
        // Keep scales finite: random fp16 bits can be inf/NaN, which compare unequal.
        if type.blockSize == 32 {
            for b in 0..<blocks {
                let scales = type == .q4_1 || type == .q5_1 ? 2 : 1
                for s in 0..<scales {
                    let h = floatToHalf(rng.float() * (s == 0 ? 0.1 : 1))
                    raw[b * type.bytesPerBlock + 2 * s] = UInt8(h & 0xff)
                    raw[b * type.bytesPerBlock + 2 * s + 1] = UInt8(h >> 8)
                }
            }
        } else {
            raw = (0..<count).flatMap { _ -> [UInt8] in
                let f = rng.float() * 100
                switch type {
                case .f32: return withUnsafeBytes(of: f.bitPattern.littleEndian) { Array($0) }
                case .f16: return withUnsafeBytes(of: floatToHalf(f).littleEndian) { Array($0) }
                default: return withUnsafeBytes(of: floatToBF16(f).littleEndian) { Array($0) }
                }
            }
        }
        var fast = [Float](repeating: .nan, count: count), slow = fast
        raw.withUnsafeBytes { src in
            dequantizeRow(type, src.baseAddress!, &fast, count: count)
            dequantizeRowNaive(type, src.baseAddress!, &slow, count: count)
        }
        let maxDiff = zip(fast, slow).map { abs($0 - $1) }.max()!
        #expect(fast == slow, "\(type): largest |fast − naive| \(maxDiff)")
    }

    @Test func q4_1LayoutAsDocumented() {
        // d = 0.5, m = -1; byte j = (j+1)&15 low, j high: element j = 0.5·((j+1)&15) − 1, j+16 = 0.5·j − 1.
        var block = [UInt8](repeating: 0, count: 20)
        let d = floatToHalf(0.5), m = floatToHalf(-1)
        block[0] = UInt8(d & 0xff); block[1] = UInt8(d >> 8); block[2] = UInt8(m & 0xff); block[3] = UInt8(m >> 8)
        for j in 0..<16 { block[4 + j] = UInt8((j + 1) & 15) | UInt8(j << 4) }
        var out = [Float](repeating: 0, count: 32)
        block.withUnsafeBytes { dequantizeRow(.q4_1, $0.baseAddress!, &out, count: 32) }
        let low: [Float] = (0..<16).map { j in 0.5 * Float((j + 1) & 15) - 1 }
        let high: [Float] = (0..<16).map { j in 0.5 * Float(j) - 1 }
        #expect(Array(out[0..<16]) == low)
        #expect(Array(out[16..<32]) == high)
    }
}

/// The K-quant and IQ4 ports against gguf-py's dequantization (KQuantReference.swift).
@Suite struct KQuantDequantizeTests {
    @Test(arguments: ["Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS"])
    func matchesGGUFPy(name: String) throws {
        let type = try #require(GGMLType.allCases.first { $0.name == name })
        let c = try #require(KQuantReference.cases[name])
        let raw = hexBytes(c.raw.filter { !$0.isWhitespace })
        let bits = hexBytes(c.values.filter { !$0.isWhitespace })
        let expected = (0..<(bits.count / 4)).map { i in
            Float(bitPattern: UInt32(bits[4 * i]) | UInt32(bits[4 * i + 1]) << 8 | UInt32(bits[4 * i + 2]) << 16 | UInt32(bits[4 * i + 3]) << 24)
        }
        #expect(type.isSupported && raw.count == expected.count / type.blockSize * type.bytesPerBlock)
        var out = [Float](repeating: .nan, count: expected.count)
        raw.withUnsafeBytes { dequantizeRow(type, $0.baseAddress!, &out, count: expected.count) }
        let maxDiff = zip(out, expected).map { abs($0 - $1) }.max()!
        #expect(out == expected, "\(name): largest |Δ| \(maxDiff)")
    }
}
