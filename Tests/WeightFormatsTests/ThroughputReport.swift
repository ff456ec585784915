// Prints parse and dequantization speed on the real model (meaningful in release builds:
// `swift test -c release --filter ThroughputReport`). Checks the result first; never
// asserts on time.
import Foundation
import Testing
import TestSupport
import WeightFormats

@Suite struct ThroughputReport {
    #if DEBUG
    /// Debug builds only check and print once: their timings mean nothing.
    static let rounds = 1
    #else
    static let rounds = 3
    #endif

    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let t0 = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    }

    @Test func parseAndDequantizeSmolLM2() throws {
        let path = Fixtures.smolLM2.path
        guard FileManager.default.fileExists(atPath: path) else { throw MissingFixture(path: path) }
        var parse: [Double] = []
        var file: GGUFFile?
        for _ in 0..<(2 * Self.rounds - 1) { parse.append(try Self.seconds { file = try GGUFFile(path: path) }) }
        let f = try #require(file)
        // Correctness first: the Q4_1 and Q8_0 paths against the naive twin on one tensor each.
        for name in ["blk.0.attn_q.weight", "output_norm.weight"] {
            let t = try #require(f.tensor(name))
            var slow = [Float](repeating: 0, count: t.elementCount)
            dequantizeRowNaive(t.type, f.data(t).baseAddress!, &slow, count: t.elementCount)
            #expect(try f.dequantize(t) == slow)
        }
        var byType: [GGMLType: (elements: Int, seconds: Double)] = [:]
        for round in 0..<Self.rounds {
            for t in f.tensors {
                let s = try Self.seconds { _ = try f.dequantize(t) }
                if round == Self.rounds - 1 { byType[t.type, default: (0, 0)].elements += t.elementCount; byType[t.type, default: (0, 0)].seconds += s }
            }
        }
        // The same into a buffer that is already paged in: the kernel alone, no first-touch faults.
        for name in ["token_embd.weight", "blk.0.ffn_down.weight"] {
            let t = try #require(f.tensor(name))
            var buf = [Float](repeating: 0, count: t.elementCount)
            var best = Double.infinity
            for _ in 0..<(2 * Self.rounds - 1) {
                best = min(best, try buf.withUnsafeMutableBufferPointer { b in try Self.seconds { try f.dequantize(t, into: b) } })
            }
            print(String(format: "dequantize %@ (%@) into a warm buffer: %.0f M elements/s", name, t.type.name, Double(t.elementCount) / best / 1e6))
        }
        let total = byType.values.reduce((0, 0.0)) { ($0.0 + $1.elements, $0.1 + $1.seconds) }
        print(String(format: "GGUF parse (SmolLM2, 272 tensors, 49152-token vocab): median %.1f ms",
                     parse.sorted()[parse.count / 2] * 1000))
        for (type, v) in byType.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            print(String(format: "dequantize %@: %d elements in %.1f ms = %.0f M elements/s",
                         type.name, v.elements, v.seconds * 1000, Double(v.elements) / v.seconds / 1e6))
        }
        print(String(format: "dequantize all: %d elements in %.1f ms = %.0f M elements/s (%.2f GB/s of Float output)",
                     total.0, total.1 * 1000, Double(total.0) / total.1 / 1e6, Double(total.0 * 4) / total.1 / 1e9))
    }

    /// dequantizeRow alone, single thread, on 1M random elements of every supported type
    /// (warm output buffer, input in cache-sized pieces reused).
    @Test func perTypeKernelSpeed() {
        var rng = SeededRandom(seed: 5)
        let n = 1 << 20
        for type in GGMLType.allCases where type.isSupported {
            var raw = rng.bytes(n / type.blockSize * type.bytesPerBlock)
            if !type.hasFastPath || type.blockSize > 1 {
                // Finite scales: overwrite every fp16 pair with a small value (harmless for qs).
                for i in stride(from: 0, to: raw.count - 1, by: 2) where raw[i + 1] & 0x7c == 0x7c { raw[i + 1] &= 0x83 }
            } else if type == .f32 {
                for i in stride(from: 3, to: raw.count, by: 4) { raw[i] &= 0x3f }
            } else {
                for i in stride(from: 1, to: raw.count, by: 2) { raw[i] &= 0x3f }
            }
            var out = [Float](repeating: 0, count: n)
            var best = Double.infinity
            raw.withUnsafeBytes { src in
                out.withUnsafeMutableBufferPointer { dst in
                    for _ in 0..<(2 * Self.rounds + 1) {
                        best = min(best, Self.seconds { dequantizeRow(type, src.baseAddress!, dst.baseAddress!, count: n) })
                    }
                }
            }
            #expect(out.allSatisfy { !$0.isNaN } || type == .f32 || type == .f16 || type == .bf16)
            print(String(format: "dequantizeRow %@: %.0f M elements/s (1 thread)", type.name, Double(n) / best / 1e6))
        }
    }
}
