// `recipe eval`: the editing evaluation harness over methods and numbers of edits.
import Foundation
import Models
import Posix
import Recipe
import RecipeEvaluation
import RecipeTraining
import Storage

enum EvalCommand: Subcommand {
    static let name = "eval"
    static let summary = "measure reliability, generality, locality after T sequential edits"
    static let help = """
    usage: recipe eval --data FILE [--edits T1,T2,...] [--method M1,M2,...] [--out FILE.json] [--samples N]
                      [--details FILE.jsonl]
           recipe eval --data FILE --retrieval [--out FILE.json] [--details FILE.jsonl]

    The lifelong editing protocol of the RECIPE paper: for each T, start from an empty
    repository, add T facts one after another, then score those T samples; consecutive
    chunks of T samples are scored until --samples samples per T (facts are added 16 at a
    time and queries scored 32 per pass over the model, each as alone up to float rounding;
    incontext facts are not refined: no prompt of theirs is put in front). Reports, per
    method and T, first what a user reads — every query answered as `recipe ask` answers it
    (the same input, greedy, --answer-tokens tokens, the end-of-text tokens and --stop
    strings end it): edit / paraphrase answers that start with the target (exact match; its
    first letter may be upper-case, as an answer to a question starts a sentence) and that
    mention it, unrelated answers identical to the unedited model's, fluency (ROME's n-gram
    entropy: (2/3 H2 + 4/3 H3) / 2 over word 2- and 3-grams, bits) and repetition (share of
    edit and paraphrase answers in which a word 3-gram occurs three times or more) — then
    reliability, generality, locality (teacher-forced token accuracy as the paper),
    retrieval accuracy, false retrieval rate, and time per edit and per query. Writes every
    figure and the configuration to --out (JSON), an SVG chart next to it, and a Markdown
    table on stdout.

      --retrieval        retrieval alone, no answers: every fact of --data loaded at once,
                         then each edit prompt and paraphrase should retrieve its own fact
                         and each unrelated prompt none (the report `recipe train` prints
                         for --dev); needs samples with a paraphrase
      --data FILE        CounterFact, zsRE or WikiData_recent JSON (format detected);
                         FILE@A:B takes only records A..<B (e.g. a held-out part)
      --edits LIST       numbers of sequential edits (default 1,10,100)
      --method LIST      none, incontext, oracle, recipe, recipe+text (the prompt, then the
                         statement as text; default: the first four)
      --samples N        samples scored per T (default 1000; at least T)
      --checkpoint FILE  editor checkpoint (default: the shipped one; "untrained" for the
                         deterministic initialization with --seed)
      --seed S           seed of the untrained initialization (default 1)
      --subject-weight X the subject rule's weight for this run instead of the editor's
                         (0: the paper's dense-only retrieval; README "Training")
      --no-question-view retrieve with the whole query only, as the paper does (by default
                         a query of several sentences is also retrieved with its last one)
    \(RefinementArguments.help)
      --as-statements    add each fact as its statement alone, as a feed would (so only
                         --refine-statements refines it)
      --questions        ask each paraphrase as the question a person would type, made
                         from the edit prompt by CounterFact's relation (`QuestionForms`:
                         "Toko Yasuda plays the" -> "What does Toko Yasuda play?");
                         samples whose relation has no question are left out
      --uncommon-answers F  score only the share F (0…1] of the samples whose targets the
                         unedited model finds least likely after "The answer is" (−log p of
                         the target's tokens), in data order: facts whose answer the model has
                         never produced
      --distractors FILE  load these facts (CounterFact, zsRE or WikiData_recent; FILE@A:B
                         for records A..<B) as statements before the T edits of every
                         chunk, never scored: retrieval and answers among many loaded facts
                         (encoded once; the transformer's prompts, no refinement); facts whose
                         subject a prompt of --data names are left out (they would answer it)
      --distractor-count N  load N distractors: the file's facts, then facts recombined
                         from them (one fact's subject in another's prompt template, with
                         an answer that template has in the file; every prompt once, the
                         same each run), for repositories larger than the data
      --chat             ask every query as a chat user message in the model's template (as
                         `ask` with "chat": true; retrieval reads the question alone)
      --no-hand-off      keep the continuous prompt in front for the whole answer (by
                         default, as `ask`, the unedited model takes over once the prompt
                         has stated the fact: at its first repeated word or sentence end)
      --answer-tokens N  tokens of each free answer (default 24, as `ask`'s max_tokens)
      --stop S           a string that ends a free answer (repeatable; as `ask`'s stop;
                         default none, so that loops are seen)
      --out FILE         JSON results (default Logs/eval.json); the chart goes to FILE.svg
      --details FILE     also write every scored query as a JSON line: method, T, sample,
                         kind (reliability, generality, locality), prompt, target, score,
                         the teacher-forced argmax tokens, the free answer (and whether it
                         starts with the target and loops; for unrelated queries the
                         unedited model's answer when it differs), the
                         retrieved and the best fact (sample indices) with their scores and
                         the sentinel's, and the view searched (whole or question) — to see
                         which edits fail and how; with --retrieval, every query's kind
                         (edit, paraphrase, unrelated), sample, prompt, retrieved and best
                         fact, scores and view
    \(modelsOptionHelp)
    \(threadsOptionHelp)
    """
    static let valued = Set(["data", "edits", "method", "samples", "checkpoint", "seed", "subject-weight", "out", "details", "models", "threads",
                              "answer-tokens", "stop", "distractors", "distractor-count", "uncommon-answers"])
        .union(RefinementArguments.valued)

    static func run(_ args: inout Arguments) throws -> ExitCode {
        let retrievalOnly = args.flag("retrieval")
        guard let data = args.string("data") else { throw UsageError("--data FILE is required") }
        let ts = try (args.string("edits") ?? "1,10,100").split(separator: ",").map { s -> Int in
            guard let t = Int(s), t >= 1 else { throw UsageError("--edits expects positive integers, got '\(s)'") }
            return t
        }
        let methods = try (args.string("method") ?? "none,incontext,oracle,recipe").split(separator: ",").map { s -> EditMethod in
            guard let m = EditMethod(rawValue: String(s)) else {
                throw UsageError("unknown method '\(s)' (none, incontext, oracle, recipe, recipe+text)")
            }
            return m
        }
        let samplesPerT = try args.int("samples", default: 1000)
        let checkpointArg = args.string("checkpoint")
        let seed = try args.int("seed", default: 1)
        let subjectWeight = try args.float("subject-weight")
        let questionView = !args.flag("no-question-view")
        let refinement = try RefinementArguments.parse(&args)
        let asStatements = args.flag("as-statements")
        let asQuestions = args.flag("questions")
        let out = args.string("out") ?? "Logs/eval.json"
        let detailsPath = args.string("details")
        let answerTokens = try args.int("answer-tokens", default: 24)
        let distractorSource = args.string("distractors")
        let uncommon = try args.double("uncommon-answers")
        let distractorCount = try args.int("distractor-count")
        let chat = args.flag("chat")
        let handOff = !args.flag("no-hand-off")
        let stop = IngestCommand.repeated("stop")
        _ = args.string("stop")
        let paths = args.modelPaths()
        try applyThreads(&args)
        try args.rejectUnknown()
        guard samplesPerT >= 1 else { throw UsageError("--samples must be positive") }
        guard (1...512).contains(answerTokens) else { throw UsageError("--answer-tokens must be in 1...512") }
        if let w = subjectWeight, w < 0 { throw UsageError("--subject-weight must not be negative") }
        if distractorCount != nil && distractorSource == nil { throw UsageError("--distractor-count needs --distractors FILE") }
        if let n = distractorCount, n < 1 { throw UsageError("--distractor-count must be positive") }
        if let f = uncommon, !(f > 0 && f <= 1) { throw UsageError("--uncommon-answers must be in (0, 1], got \(f)") }

        let loaded = try EditDataset.load(source: data)
        for r in loaded.rejected { Console.note("eval: skipped \(r)") }
        var samples = asQuestions ? loaded.samples.compactMap(QuestionForms.asQuestion) : loaded.samples
        if asQuestions { Console.note("eval: \(samples.count) of \(loaded.samples.count) samples have a question form") }
        let lm = try LanguageModel(path: ModelPaths.require(paths.llm).path)
        if let uncommon {
            let all = samples.count
            samples = try UncommonAnswers.rarest(samples, fraction: uncommon, lm: lm)
            Console.note("eval: \(samples.count) of \(all) samples have the least likely answers (--uncommon-answers \(uncommon))")
        }
        if !retrievalOnly, let t = ts.first(where: { $0 > samples.count }) {
            throw UsageError("T = \(t) needs \(t) samples; \(data) has \(samples.count)")
        }
        let encoderDir = try ModelPaths.require(paths.encoder)
        let encoder = try BertEncoder(directory: encoderDir)
        let fingerprints = try RecipeCheckpoint.Fingerprints.of(llm: lm.path, encoderDirectory: encoderDir)
        let (model, checkpointName) = try EditorCheckpoint.load(checkpointArg, fingerprints: fingerprints, seed: UInt64(seed), llm: lm)
        if retrievalOnly {
            return try retrieval(samples, data: data, model: model, checkpoint: checkpointName, encoder: encoder,
                                 fingerprints: fingerprints, subjectWeight: subjectWeight, questionView: questionView, out: out,
                                 details: detailsPath)
        }
        let queryEncoder = try QueryEncoder(encoder: encoder, parameters: model.parameters)
        let evaluator = EditEvaluator(lm: lm, model: model, features: { encoder.featureMatrix($0) },
                                      queryFeatures: { queryEncoder.features($0) })
        if let w = subjectWeight { evaluator.editor.subjectRule = SubjectRule(weight: w) }
        evaluator.editor.questionView = questionView
        if refinement.steps > 0 { evaluator.editor.refiner = try PromptRefiner(lm: lm, options: refinement) }
        evaluator.factsAsStatements = asStatements
        evaluator.answerTokens = answerTokens
        evaluator.chat = chat
        evaluator.handOff = handOff
        var distractorsLeftOut = 0
        if let distractorSource {
            let d = try EditDataset.load(source: distractorSource)
            for r in d.rejected { Console.note("eval: distractors: skipped \(r)") }
            var kept = EditEvaluator.distractors(d.samples, sharingNoSubjectWith: samples)
            distractorsLeftOut = d.samples.count - kept.count
            if distractorsLeftOut > 0 {
                Console.note("eval: distractors: left out \(distractorsLeftOut) of \(d.samples.count) about a subject that a prompt of \(data) names")
            }
            if let n = distractorCount {
                let own = min(kept.count, n)
                kept = GeneratedFacts.recombined(kept, count: n, seed: UInt64(seed))
                Console.note("eval: distractors: \(own) from \(distractorSource) and \(kept.count - own) recombined from them")
            }
            var bar = ProgressBar(total: kept.count, label: "distractors")
            try evaluator.loadDistractors(kept) { done, _ in bar.update(done) }
        }
        evaluator.stop = stop
        let details = try detailsPath.map { path -> JSONLinesFile in
            try FileSystem.makeDirectory(FileSystem.parent(of: path))
            return try JSONLinesFile(path: path, fresh: true)
        }
        var detailError: Error?

        var results: [EvaluationResult] = []
        for method in methods {
            for t in ts {
                var bar = ProgressBar(total: max(t, min(samplesPerT, samples.count / t * t)), label: "\(method.rawValue) T=\(t)")
                let r = try evaluator.evaluate(samples: samples, T: t, method: method, samplesPerT: samplesPerT,
                                               detail: details.map { file in { d in
                                                   do { try file.append(d) } catch { detailError = detailError ?? error }
                                               } }) { done, _ in
                    bar.update(done)
                }
                if let detailError { throw detailError }
                results.append(r)
                Console.note(String(format: "eval: %@ T=%d: answers start with the target %.3f / %.3f, unrelated unchanged %.3f, "
                                    + "fluency %.2f, repetition %.3f; teacher-forced %.3f / %.3f / %.3f", method.rawValue, t,
                                    r.generationReliability, r.generationGenerality ?? .nan, r.answersUnchanged, r.fluency, r.repetition,
                                    r.reliability, r.generality ?? .nan, r.locality))
            }
        }

        let dataBytes = try FileSystem.readFile(EditDataset.filePath(source: data))
        let report: [String: Any] = [
            "config": [
                "data": data, "data_crc32c": String(format: "%08x", CRC32C.checksum(dataBytes)), "samples_in_file": samples.count,
                "edits": ts, "methods": methods.map(\.rawValue), "samples_per_T": samplesPerT,
                "checkpoint": checkpointName, "seed": seed, "llm": fingerprints.llm, "encoder": fingerprints.encoder,
                "retrieval_query": "the bare prompt (no target tokens)",
                "subject_weight": evaluator.editor.subjectRule.weight, "question_view": questionView,
                "refinement": ["steps": refinement.steps, "learning_rate": refinement.learningRate, "stop_loss": refinement.stopLoss,
                               "statements": refinement.statements],
                "facts_as_statements": asStatements, "paraphrases_as_questions": asQuestions,
                "answer_tokens": answerTokens, "stop": stop, "chat": chat, "hand_off": handOff,
                "distractors": distractorSource ?? NSNull(), "uncommon_answers": uncommon ?? NSNull(),
                "distractor_count": distractorCount ?? NSNull(), "distractor_facts": evaluator.distractors.statements.count,
                "distractors_left_out": distractorsLeftOut,
                "fluency": "ROME n-gram entropy, (2/3 H2 + 4/3 H3) / 2 over word 2- and 3-grams, bits, mean over edit and paraphrase answers",
                "repetition": "share of edit and paraphrase answers in which a word 3-gram occurs 3 times or more",
                "incontext_template": "{statement}.\\n{prompt}",
            ] as [String: Any],
            "results": try results.map { try JSONSerialization.jsonObject(with: JSONEncoder().encode($0)) },
        ]
        try FileSystem.makeDirectory((out as NSString).deletingLastPathComponent.isEmpty ? "." : (out as NSString).deletingLastPathComponent)
        try FileSystem.atomicReplace(out, with: Array(try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])))
        let svgPath = (out as NSString).deletingPathExtension + ".svg"
        try FileSystem.atomicReplace(svgPath, with: Array(chart(results, title: "\((data as NSString).lastPathComponent): editing after T sequential edits").utf8))
        print(markdown(results))
        if let c = evaluator.editor.refiner?.counts, c.facts > 0 {
            Console.note(String(format: "eval: refined %d prompts, %.2f steps each on average, %d already below the stop loss",
                                c.facts, Double(c.steps) / Double(c.facts), c.unchanged))
        }
        Console.note("eval: wrote \(out) and \(svgPath)")
        return .ok
    }

    /// `--retrieval`: the retrieval report for every fact of `samples` loaded at once.
    static func retrieval(_ samples: [EditSample], data: String, model: RecipeModel, checkpoint: String, encoder: BertEncoder,
                          fingerprints: RecipeCheckpoint.Fingerprints, subjectWeight: Float?, questionView: Bool,
                          out: String, details: String?) throws -> ExitCode {
        let set = TrainingSet(samples: samples)
        guard set.count > 0 else { throw UsageError("--retrieval needs samples with a paraphrase and an unrelated prompt; \(data) has none") }
        let features = try cachedFeatures(set.texts, label: "features", encoder: encoder, fingerprint: fingerprints.encoder)
        let queryEncoder = try QueryEncoder(encoder: encoder, parameters: model.parameters)
        let queryFeatures = queryFeatures(set, encoder: queryEncoder, label: "query features")
        let rule = subjectWeight.map { SubjectRule(weight: $0) } ?? model.subjectRule
        let file = try details.map { path -> JSONLinesFile in
            try FileSystem.makeDirectory(FileSystem.parent(of: path))
            return try JSONLinesFile(path: path, fresh: true)
        }
        var detailError: Error?
        let r = RetrievalEvaluation.evaluate(model: model, set: set, features: features, queryFeatures: queryFeatures, rule: rule,
                                             questionView: questionView,
                                             detail: file.map { f in { d in
                                                 do { try f.append(d) } catch { detailError = detailError ?? error }
                                             } })
        if let detailError { throw detailError }
        let report: [String: Any] = [
            "config": ["data": data, "checkpoint": checkpoint, "subject_weight": rule.weight, "question_view": questionView,
                       "llm": fingerprints.llm, "encoder": fingerprints.encoder] as [String: Any],
            "retrieval": r.json,
        ]
        try FileSystem.makeDirectory(FileSystem.parent(of: out))
        try FileSystem.atomicReplace(out, with: Array(try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])))
        print(r.text)
        Console.note("eval: wrote \(out)")
        return .ok
    }

    static func markdown(_ results: [EvaluationResult]) -> String {
        func pct(_ x: Double?) -> String { x.map { String(format: "%.1f", 100 * $0) } ?? "–" }
        var s = "| method | T | samples | answer starts with target: edit / para. | mentions it: edit / para. | unrelated answer unchanged "
        s += "| fluency | repetition | reliability | generality | locality | retrieval acc | false retr. | edit ms p50 | query ms p50 |\n"
        s += "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        for r in results {
            s += "| \(r.method.rawValue) | \(r.T) | \(r.samples) | \(pct(r.generationReliability)) / \(pct(r.generationGenerality)) "
            s += "| \(pct(r.mentionReliability)) / \(pct(r.mentionGenerality)) | \(pct(r.answersUnchanged)) "
            s += String(format: "| %.2f | %.1f ", r.fluency, 100 * r.repetition)
            s += "| \(pct(r.reliability)) | \(pct(r.generality)) | \(pct(r.locality)) | \(pct(r.retrievalAccuracy)) | \(pct(r.falseRetrievalRate)) "
            s += String(format: "| %.1f | %.1f |\n", r.editSecondsMedian * 1000, r.querySecondsMedian * 1000)
        }
        return s
    }

    static func chart(_ results: [EvaluationResult], title: String) -> String {
        let methods = results.map(\.method).reduce(into: [EditMethod]()) { if !$0.contains($1) { $0.append($1) } }
        func panel(_ name: String, _ value: (EvaluationResult) -> Double?) -> SVGChart.Panel {
            SVGChart.Panel(title: name, series: methods.map { m in
                SVGChart.Series(name: m.rawValue, points: results.filter { $0.method == m }.compactMap { r in value(r).map { (Double(r.T), $0) } })
            })
        }
        return SVGChart.render([panel("Answer starts with the target (edit)", \.generationReliability),
                                panel("Unrelated answers unchanged", \.answersUnchanged),
                                panel("Repetition (answers that loop)", \.repetition),
                                panel("Reliability (teacher-forced)", \.reliability), panel("Generality (teacher-forced)", \.generality),
                                panel("Locality (teacher-forced)", \.locality)], title: title)
    }
}
