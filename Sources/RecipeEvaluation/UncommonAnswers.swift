// Facts whose answer the model has never produced ("geohasher", "fakaleitī", "Sarkaņi
// Parish"): real news is full of new names, and three prompt vectors carry a rare
// multi-token string less easily than text does. `recipe eval --uncommon-answers F` scores
// only the share F of a dataset whose answers the unedited model finds least likely.
import Foundation
import Models
import Recipe
import RecipeTraining

public enum UncommonAnswers {
    /// What the model reads before an answer when the answer's rarity is measured: neutral,
    /// so that the figure is about the string and not about the question.
    public static let context = "The answer is"

    /// For each target, how many nats the unedited model pays to write it after `context`
    /// (−log p of its tokens, summed): the higher, the less the model would ever produce it
    /// by itself. 32 targets per pass over the model.
    public static func cost(of targets: [String], lm: LanguageModel) throws -> [Double] {
        var costs: [Double] = []
        costs.reserveCapacity(targets.count)
        for start in stride(from: 0, to: targets.count, by: 32) {
            let cases = targets[start..<min(start + 32, targets.count)].map {
                TeacherForcedCase(prompt: context, target: $0, tokenize: { lm.tokenizer.encode($0) })
            }
            let outputs = try lm.llama.forward(batch: cases.map { LlamaSequence(tokens: $0.input) },
                                               logitsPerSequence: cases.map { .rows(Array($0.scored)) })
            for (c, out) in zip(cases, outputs) {
                var nats = 0.0
                for (i, position) in c.scored.enumerated() {
                    let p = TeacherForcedCase.softmax(out.logits(at: i))[c.labels[position]]
                    nats -= log(Double(max(p, .leastNormalMagnitude)))
                }
                costs.append(nats)
            }
        }
        return costs
    }

    /// The share `fraction` (0…1] of `samples` whose targets cost the most (`cost`), in
    /// their order in the data; ties keep the earlier sample.
    public static func rarest(_ samples: [EditSample], fraction: Double, lm: LanguageModel) throws -> [EditSample] {
        let costs = try cost(of: samples.map(\.request.target), lm: lm)
        let keep = Int((Double(samples.count) * fraction).rounded(.up))
        let chosen = Set(samples.indices.sorted { costs[$0] != costs[$1] ? costs[$0] > costs[$1] : $0 < $1 }.prefix(keep))
        return samples.indices.filter(chosen.contains).map { samples[$0] }
    }
}
