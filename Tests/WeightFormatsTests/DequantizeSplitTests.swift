// `--threads` reaches dequantization: a tensor is cut into pieces by the one thread count
// (`Threads.count`), and what it dequantizes to does not depend on the cut.
import Foundation
import Parallelism
import Testing
import TestSupport
import WeightFormats

@Suite struct DequantizeSplitTests {
    @Test func piecesFollowTheOneThreadCount() throws {
        for threads in [1, 2, 3] {
            #expect(Threads.withCount(threads) { GGUFFile.dequantizeSplit(blocks: 1 << 20).parts } == 4 * threads)
        }
        // Small tensors stay in one piece, whatever the count.
        #expect(Threads.withCount(3) { GGUFFile.dequantizeSplit(blocks: 100).parts } == 1)

        // A Q8_0 tensor of 6 x 16K blocks: 4 pieces on one thread, 6 on three (at least 16K
        // blocks each), the same floats either way.
        var rng = SeededRandom(seed: 9)
        let shape = [2048, 1536]  // rows of 2048, 3M elements, 98,304 blocks of 32
        let values = (0..<(shape[0] * shape[1])).map { _ in rng.float() }
        var w = GGUFWriter()
        w.set("general.architecture", .string("llama"))
        try w.addTensor(name: "w", shape: shape, type: .q8_0, values: values)
        let dir = try Fixtures.temporaryDirectory("dequantize-split")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("split.gguf").path
        try w.write(to: path)
        let f = try GGUFFile(path: path)
        let t = try #require(f.tensors.first)
        let blocks = t.elementCount / t.type.blockSize
        let one = try Threads.withCount(1) { (GGUFFile.dequantizeSplit(blocks: blocks).parts, try f.dequantize(t)) }
        let three = try Threads.withCount(3) { (GGUFFile.dequantizeSplit(blocks: blocks).parts, try f.dequantize(t)) }
        #expect(one.0 == 4 && three.0 == 6)
        let two = try Threads.withCount(2) { try f.dequantize(t, rows: 0..<t.rowCount) }
        #expect(one.1 == three.1 && one.1 == two)
    }
}
