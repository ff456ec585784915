import Testing
import Foundation
import Recipe
import RecipeTestSupport
import Posix
import TestSupport

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

    @Test func slotConditionedRoundTrips() throws {
        var c = smallConfig()
        c.slotConditioning = true
        let p = try RecipeParameters(config: c, values: uniform(RecipeParameters(config: c).count, seed: 8))
        var ck = RecipeCheckpoint(parameters: p, fingerprints: fingerprints, training: ["seed": "7"])
        ck.optimizer = (step: 3, m: uniform(p.count, seed: 9), v: uniform(p.count, seed: 10).map(abs))
        let back = try RecipeCheckpoint.decode(ck.encoded(dtype: .f32), file: "t", expecting: fingerprints)
        #expect(back.parameters.config == c)
        #expect(back.parameters.values == p.values)
        #expect(Array(back.parameters[.promptQueryW]) == Array(p[.promptQueryW]) && !p[.promptQueryW].isEmpty)
        #expect(back.optimizer?.m == ck.optimizer?.m && back.optimizer?.v == ck.optimizer?.v)
    }

    /// A checkpoint written before `slotConditioning` and `prompt.attention.query.w` existed
    /// (and so before every later tensor, `query.encoder.layer`): no config key, the tensor
    /// table ends at `prompt.attention.value.b` (then Adam's moments).
    @Test func checkpointFromBeforeSlotConditioningLoads() throws {
        var ck = try sample()
        ck.optimizer = (step: 5, m: uniform(ck.parameters.count, seed: 11), v: uniform(ck.parameters.count, seed: 12).map(abs))
        let bytes = try ck.encoded(dtype: .f32)
        let h = Int(bytes[12]) | Int(bytes[13]) << 8 | Int(bytes[14]) << 16 | Int(bytes[15]) << 24
        var header = try #require(JSONSerialization.jsonObject(with: Data(bytes[16..<(16 + h)])) as? [String: Any])
        var config = try #require(header["config"] as? [String: Any])
        #expect(config.removeValue(forKey: "slotConditioning") as? Bool == false)
        header["config"] = config
        var tensors = try #require(header["tensors"] as? [[String: Any]])
        let later = RecipeTensor.promptQueryW.rawValue..<RecipeTensor.allCases.count
        let removed = tensors[later]
        #expect(removed.map { $0["name"] as? String } == ["prompt.attention.query.w", "query.encoder.layer"])
        #expect(removed.allSatisfy { $0["shape"] as? [Int] == [0] })
        tensors.removeSubrange(later)
        header["tensors"] = tensors
        let json = Array(try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        var old = Array(bytes[0..<12]) + withUnsafeBytes(of: UInt32(json.count).littleEndian) { Array($0) } + json
        old += bytes[(16 + h)..<(bytes.count - 4)]
        old += withUnsafeBytes(of: CRC32C.checksum(old).littleEndian) { Array($0) }

        let back = try RecipeCheckpoint.decode(old, file: "t")
        #expect(!back.parameters.config.slotConditioning)
        #expect(back.parameters.values == ck.parameters.values)
        #expect(back.optimizer?.step == 5 && back.optimizer?.m == ck.optimizer?.m)

        // A tensor that is not zero-size may not be left out.
        tensors.remove(at: RecipeTensor.promptValueB.rawValue)
        header["tensors"] = tensors
        let bad = Array(try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        var damaged = Array(bytes[0..<12]) + withUnsafeBytes(of: UInt32(bad.count).littleEndian) { Array($0) } + bad
        damaged += bytes[(16 + h)..<(bytes.count - 4)]
        damaged += withUnsafeBytes(of: CRC32C.checksum(damaged).littleEndian) { Array($0) }
        #expect(throws: RecipeError.self) { try RecipeCheckpoint.decode(damaged, file: "t") }
    }

    /// The shipped editor (written before slot conditioning existed) loads with it off.
    @Test func shippedEditorLoadsWithoutSlotConditioning() throws {
        let path = Fixtures.repoRoot.appendingPathComponent("Sources/RecipeCLI/Resources/editor-smollm2-135m.rcpe").path
        let ck = try RecipeCheckpoint.load(path)
        #expect(!ck.parameters.config.slotConditioning)
        #expect(ck.parameters[.promptQueryW].isEmpty)
        #expect(ck.parameters[.promptValueW].count == ck.parameters.config.modelWidth * ck.parameters.config.modelWidth)
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
