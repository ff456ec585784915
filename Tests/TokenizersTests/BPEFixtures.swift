// Shared loading for the byte-level BPE tests: the SmolLM2 GGUF tokenizer and the parts of
// ../shared/goldens/smollm2.json they compare against. Loaded once per test process.
import Foundation
import Testing
import TestSupport
import Tokenizers
import WeightFormats

/// The tokenizer parts of smollm2.json.
struct SmolLM2TokenizerGolden: Decodable {
    struct Case: Decodable, Sendable, CustomTestStringConvertible {
        let text: String
        let ids: [Int]
        let ids_parse_special_false: [Int]
        let pieces_hex: [String]
        let decode: String
        let decode_skip_special: String
        var testDescription: String { String(text.debugDescription.prefix(48)) }
    }
    struct Prompt: Decodable, Sendable, CustomTestStringConvertible {
        let name: String
        let text: String
        let token_ids: [Int]
        var testDescription: String { name }
    }
    let tokenizer_cases: [Case]
    let prompts: [Prompt]
}

enum BPEFixtures {
    static let golden = Result { try Fixtures.golden("smollm2.json", as: SmolLM2TokenizerGolden.self) }
    static let tokenizer = Result { try BPETokenizer(gguf: GGUFFile(path: Fixtures.smolLM2.path)) }

    /// The golden cases for `@Test(arguments:)`; empty only if the file is missing, which
    /// `BPEGoldenTests.goldenFileIsComplete` reports as a failure.
    static let cases: [SmolLM2TokenizerGolden.Case] = (try? golden.get().tokenizer_cases) ?? []
    static let prompts: [SmolLM2TokenizerGolden.Prompt] = (try? golden.get().prompts) ?? []

    /// "where the lists first differ" for failure messages.
    static func difference(_ got: [Int], _ expected: [Int]) -> String {
        if got == expected { return "equal" }
        let i = zip(got, expected).prefix { $0 == $1 }.count
        let g = i < got.count ? String(got[i]) : "end", e = i < expected.count ? String(expected[i]) : "end"
        return "first difference at \(i): got \(g), expected \(e) (lengths \(got.count) vs \(expected.count))"
    }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String($0, radix: 16).leftPadded(to: 2) }.joined()
    }
}

extension String {
    fileprivate func leftPadded(to n: Int) -> String {
        count >= n ? self : String(repeating: "0", count: n - count) + self
    }
}
