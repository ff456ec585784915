// The edit losses of RECIPE through the frozen LLM (qizhou000/RECIPE `hinge_label_loss`,
// `logit_KL_loss`), and their gradient with respect to the continuous prompts.
//
// For fact i of a batch, with its prompt p_i ([P, C]) prepended (after the config's leading
// token, if it has one):
//   reliability  the edit prompt + target, teacher-forced: hinge label loss on the target tokens
//   generality   the paraphrase + target, the same
//   locality     the unrelated prompt + its answer: KL(unedited ‖ prompted) at the answer
//                positions, where "unedited" is the LLM without any prompt. Prepending the
//                fact's own prompt here teaches prompts to do no harm when retrieval is wrong.
//
// Hinge label loss: a target position counts only while p(label) < hinge × the runner-up's
// probability; the loss is −Σ log(p(label) + eps) over counted positions of the whole batch,
// divided by their number. KL is averaged over the locality positions of the batch.
import Foundation
import Kernels
import Models
import Recipe

public final class LlamaEditLoss: EditLossModel {
    public let model: LanguageModel
    let pass: LlamaTrainingPass
    private var cases: [String: ExampleCases] = [:]

    struct ExampleCases {
        var reliability: TeacherForcedCase
        var generality: TeacherForcedCase
        var locality: TeacherForcedCase
    }

    public init(model: LanguageModel) {
        self.model = model
        pass = LlamaTrainingPass(model: model.llama)
    }

    /// Seconds of the last call's LLM forward/backward, from the training pass.
    public var timings: LlamaTrainingTimings { pass.timings }

    func cases(for e: TrainingExample) throws -> ExampleCases {
        let key = e.statement + "\u{0}" + e.generality.prompt + (e.chat ? "\u{0}chat" : "")
        if let c = cases[key] { return c }
        let tok = { (s: String) in self.model.tokenizer.encode(s) }
        // As `recipe eval` and `ask` render a question (`AnswerGenerator.text(of:chat:)`).
        let text = { (q: String) in try AnswerGenerator.text(of: q, chat: e.chat, tokenizer: self.model.tokenizer) }
        let c = ExampleCases(reliability: TeacherForcedCase(prompt: try text(e.reliability.prompt), target: e.reliability.target, tokenize: tok),
                             generality: TeacherForcedCase(prompt: try text(e.generality.prompt), target: e.generality.target, tokenize: tok),
                             locality: TeacherForcedCase(prompt: e.locality.prompt, target: e.locality.target, tokenize: tok))
        cases[key] = c
        return c
    }

    public func editLosses(prompts: [Float], examples: [TrainingExample], config: RecipeConfig) throws -> EditLosses {
        let B = examples.count, P = config.promptLength, C = config.modelWidth, V = model.llama.config.vocabSize
        guard prompts.count == B * P * C else {
            throw RecipeError.invalidArgument("\(prompts.count) prompt floats for \(B) facts of \(P)×\(C)")
        }
        let all = try examples.map(cases(for:))
        let forwardStart = Date()
        // Unedited predictions at the locality positions (no gradient): one batched pass with
        // logits at the scored rows only.
        let preLogits = try model.llama.forward(batch: all.map { LlamaSequence(tokens: $0.locality.input) },
                                                logitsPerSequence: all.map { .rows(Array($0.locality.scored)) })
            .map(\.logits)

        // Prompted sequences: reliability, generality, locality for every fact, each with the
        // leading token's row (if any) and the fact's prompt in front.
        let leading = try config.leadingToken.map { try model.llama.embeddingRows(of: [$0]) } ?? []
        let L = leading.count / C
        var batch: [LlamaSequence] = []
        var rows: [[Int]] = []
        for (i, c) in all.enumerated() {
            let prefix = leading + prompts[(i * P * C)..<((i + 1) * P * C)]
            for tf in [c.reliability, c.generality, c.locality] {
                batch.append(LlamaSequence(tokens: tf.input, prefix: prefix))
                rows.append(tf.scored.map { $0 + L + P })
            }
        }
        let outputs = try pass.forward(batch: batch, lossRows: rows)
        let forwardSeconds = Date().timeIntervalSince(forwardStart)

        // Losses and d loss / d logits.
        var dLogits = outputs.map { [Float](repeating: 0, count: $0.logits.count) }
        var relLabels: [(seq: Int, row: Int, label: Int)] = [], genLabels = relLabels
        for (i, c) in all.enumerated() {
            for (k, pos) in c.reliability.scored.enumerated() { relLabels.append((3 * i, k, c.reliability.labels[pos])) }
            for (k, pos) in c.generality.scored.enumerated() { genLabels.append((3 * i + 1, k, c.generality.labels[pos])) }
        }
        let rel = Self.hingeLabelLoss(outputs, relLabels, V: V, hinge: config.editHingeScale, eps: config.eps,
                                      weight: config.reliabilityLambda, into: &dLogits)
        let gen = Self.hingeLabelLoss(outputs, genLabels, V: V, hinge: config.editHingeScale, eps: config.eps,
                                      weight: config.generalityLambda, into: &dLogits)
        var klRows: [(seq: Int, row: Int, pre: ArraySlice<Float>)] = []
        for (i, c) in all.enumerated() {
            for k in 0..<c.locality.scored.count { klRows.append((3 * i + 2, k, preLogits[i][(k * V)..<((k + 1) * V)])) }
        }
        let loc = Self.klLoss(outputs, klRows, V: V, weight: config.localityLambda, into: &dLogits)

        let backwardStart = Date()
        let dPrefix = try pass.backward(dLogits: dLogits)
        let backwardSeconds = Date().timeIntervalSince(backwardStart)
        var dPrompts = [Float](repeating: 0, count: B * P * C)
        for (s, d) in dPrefix.enumerated() where !d.isEmpty {
            let i = s / 3
            for j in 0..<(P * C) { dPrompts[i * P * C + j] += d[L * C + j] }
        }
        return EditLosses(reliability: rel, generality: gen, locality: loc, dPrompts: dPrompts,
                          forwardSeconds: forwardSeconds, backwardSeconds: backwardSeconds)
    }

    public func statementTokens(_ statements: [String], maxTokens: Int) throws -> StatementTokens {
        try model.statementTokens(statements, maxTokens: maxTokens)
    }

    /// RECIPE's hinge label loss over `labels`, accumulating `weight ×` its gradient.
    static func hingeLabelLoss(_ outputs: [LlamaOutput], _ labels: [(seq: Int, row: Int, label: Int)], V: Int,
                               hinge: Float, eps: Float, weight: Float, into dLogits: inout [[Float]]) -> Float {
        var counted: [(seq: Int, row: Int, label: Int, p: [Float])] = []
        for l in labels {
            let p = TeacherForcedCase.softmax(outputs[l.seq].logits(at: l.row))
            var first: Float = 0, second: Float = 0
            for v in p { if v > first { second = first; first = v } else if v > second { second = v } }
            if p[l.label] < second * hinge { counted.append((l.seq, l.row, l.label, p)) }
        }
        guard !counted.isEmpty else { return 0 }
        let n = Float(counted.count)
        var loss: Float = 0
        for c in counted {
            let py = c.p[c.label]
            loss -= logf(py + eps)
            // d(−log(p_y + eps))/dz = −p_y/(p_y + eps) · (onehot(y) − p)
            let g = -py / (py + eps) / n * weight
            let base = c.row * V
            for v in 0..<V { dLogits[c.seq][base + v] += g * ((v == c.label ? 1 : 0) - c.p[v]) }
        }
        return loss / n
    }

    /// Mean KL(softmax(pre) ‖ softmax(post)) over `rows`, accumulating `weight ×` its gradient
    /// w.r.t. the post logits: (p_post − p_pre) / n.
    static func klLoss(_ outputs: [LlamaOutput], _ rows: [(seq: Int, row: Int, pre: ArraySlice<Float>)], V: Int,
                       weight: Float, into dLogits: inout [[Float]]) -> Float {
        guard !rows.isEmpty else { return 0 }
        let n = Float(rows.count)
        var loss: Float = 0
        for r in rows {
            let p1 = TeacherForcedCase.softmax(r.pre), p2 = TeacherForcedCase.softmax(outputs[r.seq].logits(at: r.row))
            var kl: Float = 0
            for v in 0..<V where p1[v] > 0 { kl += p1[v] * (logf(p1[v]) - logf(max(p2[v], 1e-30))) }
            loss += kl
            let base = r.row * V
            for v in 0..<V { dLogits[r.seq][base + v] += weight * (p2[v] - p1[v]) / n }
        }
        return loss / n
    }
}
