import Foundation
import Kernels
import Models
import TestSupport

/// The golden prompts of `goldens/smollm2.json` (only the fields the Llama tests read).
struct SmolLM2Goldens: Decodable {
    struct Prompt: Decodable {
        let name: String
        let token_ids: [Int]
        let last_logits: [Float]
        let top10_ids: [[Int]]
        let top10_logits: [[Float]]
        let greedy16_ids: [Int]
        let greedy16_top1_minus_top2: [Float]
    }
    let prompts: [Prompt]
}

/// The SmolLM2 model and goldens, loaded once for all tests (loading fails loudly, naming
/// the missing file, instead of skipping).
enum LlamaFixture {
    static let model: Result<Llama, Error> = Result { try Llama(path: Fixtures.smolLM2.path) }
    static let goldens: Result<SmolLM2Goldens, Error> = Result { try Fixtures.golden("smollm2.json", as: SmolLM2Goldens.self) }
}

func maxAbsDiff<S: Sequence, R: Sequence>(_ a: S, _ b: R) -> Float where S.Element == Float, R.Element == Float {
    zip(a, b).map { abs($0 - $1) }.max() ?? 0
}
