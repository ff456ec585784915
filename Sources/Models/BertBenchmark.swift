// Encoder throughput for `recipe bench`: sentences/s of `BertEncoder.features` on batches
// of short knowledge statements like RECIPE's ("The mother tongue of Danielle Darrieux
// is English", 10–20 tokens). Checks first that batched features equal one-by-one
// features, then warms up, then reports the median and p95 over repeated runs.
import Foundation
import Kernels
import Parallelism

public struct BertBenchmark {
    public struct Result: Sendable, CustomStringConvertible {
        public let batchSize: Int
        public let threads: Int
        /// Mean tokens per statement, [CLS]/[SEP] included.
        public let tokensPerSentence: Double
        /// Seconds per batch: fastest run (the least disturbed on a shared machine), median, p95.
        public let best: Double
        public let median: Double
        public let p95: Double
        /// Seconds of every timed run, ascending.
        public let times: [Double]
        /// Largest |batched − one-by-one| over the checked features.
        public let maxDifference: Float
        public var sentencesPerSecond: Double { Double(batchSize) / median }
        public var description: String {
            String(format: "batch %4d, %d thread(s), %.1f tok/sentence: %7.1f sentences/s median, %7.1f best (per batch: best %.2f ms, median %.2f ms, p95 %.2f ms; check max |Δ| %.1e)",
                   batchSize, threads, tokensPerSentence, sentencesPerSecond, Double(batchSize) / best,
                   best * 1e3, median * 1e3, p95 * 1e3, maxDifference)
        }
    }

    /// `count` distinct short statements.
    public static func statements(_ count: Int) -> [String] {
        let subjects = ["Danielle Darrieux", "Thomas Joannes Stieltjes", "the Eiffel Tower", "Toyota", "Apple A5",
                        "Honus Wagner", "Kuala Lumpur", "the Nile", "Marie Curie", "Autonomous University of Madrid",
                        "Leonhard Euler", "BBC One", "Pope Clement VII", "Ferrari", "Louis Armstrong", "Mount Kenya"]
        let relations = ["The mother tongue of %@ is %@", "%@ is a citizen of %@", "%@ was born in %@",
                         "The headquarters of %@ are in %@", "%@ is owned by %@", "%@ works in the field of %@",
                         "%@ is located in the continent of %@", "The official language of %@ is %@"]
        let objects = ["English", "French", "Dutch", "Japan", "Google", "physics", "Africa", "Italy", "Berlin",
                       "jazz", "Spanish", "Microsoft", "Asia", "chemistry", "Canada", "Swedish", "Nintendo"]
        return (0..<count).map { i in
            let r = relations[i % relations.count]
            let s = subjects[(i / relations.count) % subjects.count]
            let o = objects[(i * 7 + i / 5) % objects.count]
            let parts = r.components(separatedBy: "%@")  // [before, middle, after]
            return parts[0] + s + parts[1] + o + parts[2]
        }
    }

    /// Times `encoder.features` on `batchSize` statements with `threads` threads
    /// (`Threads.set`; OpenBLAS follows at its next sgemm), `runs` timed runs after `warmup`.
    public static func run(_ encoder: BertEncoder, batchSize: Int, threads: Int, runs: Int = 10, warmup: Int = 2) -> Result {
        Threads.set(threads)
        let texts = statements(batchSize)
        let ids = texts.map { encoder.tokenizer.encode($0) }
        let batched = encoder.features(texts)
        var maxDiff: Float = 0
        for i in stride(from: 0, to: batchSize, by: max(1, batchSize / 8)) {
            let single = encoder.features([texts[i]])[0]
            maxDiff = max(maxDiff, zip(single, batched[i]).map { abs($0 - $1) }.max() ?? 0)
        }
        for _ in 0..<warmup { _ = encoder.features(texts) }
        var times: [Double] = []
        for _ in 0..<runs {
            let t0 = DispatchTime.now().uptimeNanoseconds
            _ = encoder.features(texts)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        times.sort()
        return Result(batchSize: batchSize, threads: threads,
                      tokensPerSentence: Double(ids.map(\.count).reduce(0, +)) / Double(batchSize),
                      best: times[0], median: times[times.count / 2], p95: times[min(times.count - 1, Int(Double(times.count) * 0.95))],
                      times: times, maxDifference: maxDiff)
    }
}
