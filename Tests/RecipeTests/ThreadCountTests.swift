// One thread count for the process: set once (as `--threads` and RECIPE_THREADS do at
// start), it is what the Swift kernels' splits, OpenBLAS, key search and dequantization
// use. The editor is where all of them meet: it encodes with the kernels and OpenBLAS,
// loads dequantized weights and searches keys.
import Kernels
import Parallelism
import Storage
import Testing
import WeightFormats

@Suite struct ThreadCountTests {
    @Test func theCountSetOnceReachesEveryParallelLoop() {
        for n in [1, 3, 2] {
            Threads.withCount(n) {
                // The kernels' `parallelRanges(T, minimum:)` split.
                #expect(WorkSplit(1 << 20, minimum: 16).parts == n)
                // Key search over a large key matrix: one part per thread.
                #expect(KeySearch.split(rowCount: 100 * KeySearch.parallelThreshold).parts == n)
                // Dequantization of a large tensor: four pieces per thread.
                #expect(GGUFFile.dequantizeSplit(blocks: 1 << 24).parts == 4 * n)
                // OpenBLAS, at its next sgemm.
                BLASThreads.sync()
                #expect(BLASThreads.openBLASCount == n)
            }
        }
    }
}
