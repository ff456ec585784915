import Testing
import Foundation
import Recipe
import Posix

@Suite struct RecipeCheckpointTests {
    let fingerprints = RecipeCheckpoint.Fingerprints(llm: "crc32c:00000001:10", encoder: "crc32c:00000002:20")

    func sample() throws -> RecipeCheckpoint {
        let c = smallConfig()
        let p = try RecipeParameters(config: c, values: uniform(RecipeParameters(config: c).count, seed: 3))
        return RecipeCheckpoint(parameters: p, fingerprints: fingerprints, training: ["seed": "7"])
    }

    @Test func roundTripF32IsExactAndF16IsClose() throws {
        let ck = try sample()
        let back = try RecipeCheckpoint.decode(ck.encoded(dtype: .f32), file: "t", expecting: fingerprints)
        #expect(back.parameters.values == ck.parameters.values)
        #expect(back.training == ["seed": "7"])
        let half = try RecipeCheckpoint.decode(ck.encoded(dtype: .f16), file: "t")
        let worst = zip(half.parameters.values, ck.parameters.values).map { abs($0 - $1) }.max()!
        #expect(worst < 1e-3, "largest f16 difference \(worst)")
    }

    @Test func optimizerStateRoundTrips() throws {
        var ck = try sample()
        let n = ck.parameters.count
        ck.optimizer = (step: 42, m: uniform(n, seed: 5), v: uniform(n, seed: 6).map(abs))
        let back = try RecipeCheckpoint.decode(ck.encoded(dtype: .f32), file: "t")
        #expect(back.optimizer?.step == 42)
        #expect(back.optimizer?.m == ck.optimizer?.m && back.optimizer?.v == ck.optimizer?.v)
    }

    @Test func damageIsDetected() throws {
        let bytes = try sample().encoded(dtype: .f32)
        var flipped = bytes
        flipped[bytes.count / 2] ^= 0x10
        #expect(throws: RecipeError.self) { try RecipeCheckpoint.decode(flipped, file: "t") }
        #expect(throws: RecipeError.self) { try RecipeCheckpoint.decode(Array(bytes.prefix(bytes.count - 9)), file: "t") }
        #expect(throws: RecipeError.self) { try RecipeCheckpoint.decode(Array(bytes.prefix(10)), file: "t") }
        var magic = bytes
        magic[0] = UInt8(ascii: "X")
        #expect(throws: RecipeError.self) { try RecipeCheckpoint.decode(magic, file: "t") }
    }

    @Test func futureVersionIsRefusedByName() throws {
        var bytes = try sample().encoded(dtype: .f32)
        bytes[8] = 9
        let body = Array(bytes.prefix(bytes.count - 4))
        let crc = CRC32C.checksum(body)
        bytes = body + withUnsafeBytes(of: crc.littleEndian) { Array($0) }
        #expect(throws: RecipeError.checkpoint(file: "t", reason: "format version 9, this build reads version 1")) {
            try RecipeCheckpoint.decode(bytes, file: "t")
        }
    }

    @Test func otherModelsAreRefused() throws {
        let bytes = try sample().encoded(dtype: .f16)
        let other = RecipeCheckpoint.Fingerprints(llm: "crc32c:ffffffff:10", encoder: fingerprints.encoder)
        #expect(throws: RecipeError.self) { try RecipeCheckpoint.decode(bytes, file: "t", expecting: other) }
    }

    @Test func writesAtomicallyToDisk() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("editor.rcpe").path
        let ck = try sample()
        try ck.write(to: path, dtype: .f32)
        #expect(try RecipeCheckpoint.load(path).parameters.values == ck.parameters.values)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["editor.rcpe"])
    }
}
