// A prompt and its target as the LLM reads them teacher-forced, built as RECIPE's public
// evaluation code builds them (qizhou000/RECIPE `utils/data.py: prompts_target_to_x_y_mask`):
// what the refiner lowers the loss of at ingestion (`PromptRefiner`), what training's edit
// losses score and what the evaluation's token accuracies count.
import Foundation

/// A teacher-forced scoring case: the model reads `input` and is scored at the positions
/// `scored` (those whose next token belongs to the target).
public struct TeacherForcedCase: Sendable, Equatable {
    /// Token ids fed to the model: tokens(prompt + target) without the last one.
    public let input: [Int]
    /// The next token at every input position: tokens(prompt + target) without the first one.
    public let labels: [Int]
    /// Positions of `input` that are scored: from `tokens(prompt).count - 1` to the end.
    public let scored: Range<Int>

    /// Builds the case as RECIPE does: a target without a leading space gets one, the
    /// prompt+target string is tokenized as a whole, and scoring starts at the last prompt
    /// token (whose next token is the first target token).
    public init(prompt: String, target: String, tokenize: (String) -> [Int]) {
        let spaced = target.hasPrefix(" ") ? target : " " + target
        let all = tokenize(prompt + spaced)
        let promptCount = tokenize(prompt).count
        input = Array(all.dropLast())
        labels = Array(all.dropFirst())
        let start = min(max(promptCount - 1, 0), input.count)
        scored = start..<input.count
    }

    public init(input: [Int], labels: [Int], scored: Range<Int>) {
        self.input = input
        self.labels = labels
        self.scored = scored
    }

    /// Softmax of one logit row (max-subtracted): the probabilities at a scored position, as
    /// the refiner and training's edit losses read them.
    public static func softmax(_ logits: ArraySlice<Float>) -> [Float] {
        let m = logits.max() ?? 0
        var p = logits.map { expf($0 - m) }
        let inv = 1 / p.reduce(0, +)
        for j in p.indices { p[j] *= inv }
        return p
    }
}
