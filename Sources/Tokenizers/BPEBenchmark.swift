// Encoding throughput of `BPETokenizer` for `recipe bench`: MB/s and tokens/s of `encode`
// on English-like text. Checks first that decode(encode(text)) gives the text back, times
// the first (cold word cache) run on its own, warms up, then reports median and p95.
// Measured on the 2-core dev machine (shared, noisy), release build, SmolLM2 vocabulary:
// `sampleText` 12 MB/s; 3.5 MB of vim's English documentation 9-17 MB/s; random Unicode
// (Latin, CJK, symbols) 2-3 MB/s; one 100 kB word, the worst case, 2 MB/s. The goal was
// > 1 MB/s of English.
import Foundation

public struct BPEBenchmark {
    public struct Result: Sendable, CustomStringConvertible {
        public let bytes: Int
        public let tokens: Int
        /// Seconds of the first run (an empty word cache if the tokenizer is fresh).
        public let cold: Double
        /// Seconds per run after warm-up.
        public let median: Double
        public let p95: Double
        public var megabytesPerSecond: Double { Double(bytes) / 1e6 / median }
        public var tokensPerSecond: Double { Double(tokens) / median }
        public var description: String {
            String(format: "encode %.2f MB -> %d tokens (%.2f bytes/token): %.2f MB/s, %.0f tokens/s (median %.1f ms, p95 %.1f ms; cold first run %.1f ms)",
                   Double(bytes) / 1e6, tokens, Double(bytes) / Double(max(tokens, 1)), megabytesPerSecond,
                   tokensPerSecond, median * 1e3, p95 * 1e3, cold * 1e3)
        }
    }

    public enum Failure: Error, CustomStringConvertible {
        /// decode(encode(text)) differs from the text: the tokenizer is broken for it.
        case roundTrip(firstDifferenceAtByte: Int)
        public var description: String {
            switch self {
            case let .roundTrip(at): return "BPEBenchmark: decode(encode(text)) differs from the text at byte \(at)"
            }
        }
    }

    /// About `bytes` bytes of English-like text: sentences drawn deterministically from a
    /// fixed stock of words, numbers and punctuation, so that runs are comparable.
    public static func sampleText(bytes: Int) -> String {
        let words = ("the of and to in is was for on that with as by at from his her their it an be this which "
            + "or are were had has have not but also its one all new more after first two other time year years "
            + "knowledge editing language model retrieval prompt repository statement capital France Paris "
            + "Danielle Darrieux mother tongue English French citizen born Toronto headquarters located "
            + "continent Africa official Microsoft Google physics chemistry university professor village river "
            + "clockmaker morning wooden shutters children winter evening stranger coat repaired watch stopped")
            .split(separator: " ").map(String.init)
        let punctuation = [",", ",", ".", ";", ":", "!", "?", " (see below)", "'s", " -", "\n", "\n\n"]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ n: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(n))
        }
        var text = ""
        text.reserveCapacity(bytes + 64)
        var capitalize = true
        while text.utf8.count < bytes {
            var w = words[next(words.count)]
            if capitalize { w = w.prefix(1).uppercased() + w.dropFirst() }
            text += (text.isEmpty || text.hasSuffix("\n") ? "" : " ") + w
            capitalize = false
            switch next(12) {
            case 0: text += " \(next(3000))"
            case 1, 2:
                let p = punctuation[next(punctuation.count)]
                text += p
                capitalize = p == "." || p == "!" || p == "?" || p.hasPrefix("\n")
            default: break
            }
        }
        return text
    }

    /// Times `tokenizer.encode(text)`: `runs` timed runs after `warmup`.
    /// - Throws: `Failure.roundTrip` if the text does not survive encode + decode.
    public static func run(_ tokenizer: BPETokenizer, text: String, runs: Int = 10, warmup: Int = 2) throws -> Result {
        var t0 = DispatchTime.now().uptimeNanoseconds
        let ids = tokenizer.encode(text)
        let cold = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        let back = try tokenizer.decodeBytes(ids)
        let original = Array(text.utf8)
        if back != original {
            let at = zip(back, original).prefix { $0 == $1 }.count
            throw Failure.roundTrip(firstDifferenceAtByte: at)
        }
        for _ in 0..<warmup { _ = tokenizer.encode(text) }
        var times: [Double] = []
        for _ in 0..<max(runs, 1) {
            t0 = DispatchTime.now().uptimeNanoseconds
            _ = tokenizer.encode(text)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        times.sort()
        return Result(bytes: original.count, tokens: ids.count, cold: cold, median: times[times.count / 2],
                      p95: times[min(times.count - 1, Int(Double(times.count) * 0.95))])
    }
}
