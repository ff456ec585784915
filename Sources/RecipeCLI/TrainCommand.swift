// `recipe train`: trains the editor's heads, prompt transformer and sentinel.
import Foundation
import Kernels
import Models
import Posix
import Recipe
import RecipeEvaluation
import RecipeTraining

enum TrainCommand: Subcommand {
    static let name = "train"
    static let summary = "train the editor (heads, prompt transformer, sentinel) through the frozen LLM"
    static let help = """
    usage: recipe train [--data FILES] [--dev FILE] [--steps N] [--batch N] [--seed S] [--run DIR] [--out FILE]

    Trains RECIPE's knowledge and query heads, prompt transformer and Knowledge Sentinel on
    CounterFact + zsRE, on top of the frozen all-MiniLM-L6-v2 encoder (its features are
    computed once and cached under ~/.cache/recipe/features) and the frozen SmolLM2 LLM.
    The run directory keeps a JSON-lines log (train.jsonl) and a training checkpoint
    (state.rcpe, written atomically every --checkpoint-every steps); running the same command
    again resumes from it exactly, also after kill -9. The final editor is written to --out.

      --data FILES            comma-separated training files; FILE@A:B takes only records
                              A..<B (default: ../shared/data/counterfact/train.json,
                              ../shared/data/zsre/train.json@:800 — zsRE records 800… are
                              held out for evaluation)
      --dev FILE              retrieval is measured on it at the end (default:
                              ../shared/data/counterfact/dev.json; "none" to skip)
      --steps N               total optimizer steps (default 1000)
      --batch N               facts per step whose edit losses run through the LLM (default 8)
      --contrastive-batch N   facts per step in the retrieval (contrastive) losses, the
                              first --batch of which also get the edit losses (default 64)
      --seed S                seed of initialization, batches and choices (default 1)
      --run DIR               run directory (default Logs/train-seed<S>)
      --out FILE              final checkpoint (default <run>/editor.rcpe, f16)
      --checkpoint-every N    steps between training checkpoints (default 50)
      --hard-negatives        put each fact's most similar fact (by encoder cosine) in its
                              batch, so the contrastive losses see confusable facts
      --same-subject-negatives F
                              also push below the sentinel, for a fraction F (0…1) of the
                              facts, a question about the fact's subject through another
                              relation (another fact's edit prompt of a relation other than
                              the fact's, with the subject swapped in; with --question-forms F,
                              a fraction F of them as that relation's question or noun form)
      --retrieval-only        train only the heads and the sentinel (contrastive losses);
                              no LLM is loaded
      --fresh                 ignore an existing state.rcpe in the run directory
      --init FILE             start from this editor checkpoint instead of the initialization
                              (e.g. the output of a --retrieval-only stage)
      --freeze-knowledge      keep the knowledge head fixed (with --retrieval-only and --init:
                              retune the query head and the sentinel of a trained editor; its
                              prompts depend on the knowledge head only, so they stay valid)
      --freeze-retrieval      keep the heads, the sentinel and the editor's query encoder
                              layer fixed (learning rate 0, no edit gradient into the
                              knowledge head): train only the prompts
      --slot-conditioning     give each prompt slot its own value map and make the slots'
                              attention queries depend on the fact (RecipeConfig
                              slotConditioning); with --init, the editor is converted so that
                              it starts with exactly the prompts it had. An --init editor that
                              has it keeps it, with or without this flag
      --leading-token ID      put this LLM token (e.g. 0, <|endoftext|>) in front of the
                              prompts, so that the first position, the LLM's attention sink,
                              is not a prompt vector (RecipeConfig leadingToken); an --init
                              editor that has one keeps it unless this says "none"
      --subject-weight X      the subject rule's weight in the editor (RecipeConfig
                              subjectWeight; 0, the default, is the paper's dense-only
                              retrieval): a fact with a subject scores X higher for a query
                              that names it and X lower for one that does not, in
                              retrieval and in this run's contrastive scores; an --init
                              editor keeps its own unless this is given
      --query-encoder         fine-tune the encoder's top layer for queries: the editor
                              carries its own copy of it (from the encoder's weights;
                              RecipeConfig queryEncoderLayers), statements keep the frozen
                              encoder so keys and prompts stay as they are. An --init
                              editor that has one keeps it
      --lr-encoder X          Adam learning rate of that layer (default 3e-5)
      --lr-heads X            Adam learning rate of the heads and sentinel (default 1e-4)
      --lr-prompt X           Adam learning rate of the prompt transformer (default 1e-4)
      --lr-schedule S         constant (default) or cosine: both rates decay to 0 at --steps
      --locality-weight X     weight of the locality (KL) loss against reliability and
                              generality (default 1)
      --unrelated-weight X    weight of the sentinel term of unrelated queries against the
                              other retrieval terms (default 1; lower: more recall, more
                              false retrievals)
      --question-views F      show the retrieval losses a fraction F (0…1) of the queries that
                              have a question view (several sentences) as their last sentence,
                              drawn per step (RecipeConfig questionViewFraction; default 0)
      --question-forms F      replace a fraction F (0…1) of the paraphrases, drawn per step, by
                              the question a person would type for the edit ("What does
                              Toko Yasuda play?") or its relation's noun form ("The
                              instrument played by Toko Yasuda is"; `QuestionForms`), in the
                              retrieval and the label losses (RecipeConfig
                              questionFormFraction; default 0)
      --chat-fraction F       let the LLM read the edit and paraphrase queries of a fraction
                              F (0…1) of the examples, drawn per step, as chat user turns in
                              the model's template, the target starting the assistant's turn
                              (label losses only; RecipeConfig chatFraction; default 0)
      --calibrate-sentinel RATE
                              at the end, scale the sentinel key so that a fraction RATE of
                              the --calibration set's unrelated prompts retrieve a fact (with
                              its facts loaded); hold that set out of --data and of --dev
      --calibration FILE      the calibration set (FILE@A:B for records A..<B)
      --width R               representation width (default 256)
      --contrastive-hinge X   hinge scale of the sentinel terms (default 1.5; 1e9 = no hinge)
      --edit-hinge X          hinge scale of the label loss: a target token stops counting
                              once p(target) ≥ X × the runner-up's (default 1.5, as the
                              reference; 1e9 = cross-entropy on every target token)
      --json                  print the final report as one JSON object
    \(modelsOptionHelp)
    \(threadsOptionHelp)
    """
    static let valued: Set<String> = ["data", "dev", "steps", "batch", "contrastive-batch", "seed", "run", "out", "checkpoint-every",
                                      "leading-token", "subject-weight", "lr-encoder", "lr-heads", "lr-prompt", "same-subject-negatives", "unrelated-weight", "question-views", "question-forms", "chat-fraction", "calibrate-sentinel", "calibration", "lr-schedule", "locality-weight", "width", "contrastive-hinge", "edit-hinge", "init", "models", "threads"]

    static func run(_ args: inout Arguments) throws -> ExitCode {
        let json = args.flag("json"), retrievalOnly = args.flag("retrieval-only"), fresh = args.flag("fresh")
        let freezeRetrieval = args.flag("freeze-retrieval"), hardNegatives = args.flag("hard-negatives")
        let freezeKnowledge = args.flag("freeze-knowledge"), slotConditioning = args.flag("slot-conditioning")
        let fineTuneQueries = args.flag("query-encoder")
        let sameSubject = try args.string("same-subject-negatives").map { s -> Double in
            guard let f = Double(s), f > 0 && f <= 1 else { throw UsageError("--same-subject-negatives expects a fraction in (0, 1], got \(s)") }
            return f
        }
        let initPath = args.string("init")
        let leadingToken = try args.string("leading-token").map { s -> Int? in
            if s == "none" { return nil }
            guard let t = Int(s), t >= 0 else { throw UsageError("--leading-token expects a token id or none, got '\(s)'") }
            return t
        }
        let subjectWeight = try args.float("subject-weight")
        let dataFiles = (args.string("data") ?? "../shared/data/counterfact/train.json,../shared/data/zsre/train.json@:800")
            .split(separator: ",").map(String.init)
        let dev = args.string("dev") ?? "../shared/data/counterfact/dev.json"
        let calibration = args.string("calibration")
        let calibrationRate = try args.string("calibrate-sentinel").map { s -> Double in
            guard let r = Double(s), r > 0 && r < 1 else { throw UsageError("--calibrate-sentinel expects a rate in (0, 1), got \(s)") }
            return r
        }
        guard (calibration == nil) == (calibrationRate == nil) else {
            throw UsageError("--calibrate-sentinel and --calibration go together")
        }
        let steps = try args.int("steps", default: 1000)
        let batch = try args.int("batch", default: 8)
        let contrastiveBatch = try args.int("contrastive-batch", default: 64)
        let seed = try args.int("seed", default: 1)
        let every = try args.int("checkpoint-every", default: 50)
        let runDir = args.string("run") ?? "Logs/train-seed\(seed)"
        let out = args.string("out") ?? (runDir as NSString).appendingPathComponent("editor.rcpe")
        var config = RecipeConfig()
        config.representationWidth = try args.int("width", default: config.representationWidth)
        if let v = try args.float("lr-heads") { config.headLearningRate = v }
        if let v = try args.float("lr-prompt") { config.promptLearningRate = v }
        if let v = try args.float("lr-encoder") { config.encoderLearningRate = v }
        if fineTuneQueries { config.queryEncoderLayers = 1 }
        switch args.string("lr-schedule") ?? "constant" {
        case "constant": config.learningRateDecaySteps = 0
        case "cosine": config.learningRateDecaySteps = steps
        case let other: throw UsageError("--lr-schedule expects constant or cosine, got '\(other)'")
        }
        if let v = try args.float("locality-weight") { config.localityLambda = v }
        if let v = try args.float("unrelated-weight") { config.unrelatedLambda = v }
        if let v = try args.float("question-views") {
            guard v >= 0 && v <= 1 else { throw UsageError("--question-views expects a fraction in 0…1, got \(v)") }
            config.questionViewFraction = v
        }
        if let v = try args.float("question-forms") {
            guard v >= 0 && v <= 1 else { throw UsageError("--question-forms expects a fraction in 0…1, got \(v)") }
            config.questionFormFraction = v
        }
        if let v = try args.float("chat-fraction") {
            guard v >= 0 && v <= 1 else { throw UsageError("--chat-fraction expects a fraction in 0…1, got \(v)") }
            config.chatFraction = v
        }
        if let v = try args.float("contrastive-hinge") { config.contrastiveHingeScale = v }
        if let v = try args.float("edit-hinge") { config.editHingeScale = v }
        if freezeKnowledge { config.trainKnowledgeHead = false }
        config.slotConditioning = slotConditioning
        config.leadingToken = leadingToken ?? nil
        if let subjectWeight { config.subjectWeight = subjectWeight }
        if freezeRetrieval { config.freezeRetrieval() }
        let paths = args.modelPaths()
        try applyThreads(&args)
        try args.rejectUnknown()
        if freezeRetrieval && retrievalOnly { throw UsageError("--freeze-retrieval and --retrieval-only leave nothing to train") }
        guard steps >= 0, every > 0, seed >= 0 else { throw UsageError("--steps must not be negative, --checkpoint-every positive, --seed non-negative") }
        try config.validate()
        // The run directory (and its parents) first, so that a bad path fails before minutes
        // of data loading and feature encoding.
        do {
            try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
        } catch {
            throw UsageError("--run \(runDir): cannot create the directory (\(error.localizedDescription))")
        }

        // Data and cached encoder features.
        var samples: [EditSample] = []
        for f in dataFiles {
            let loaded = try EditDataset.load(source: f)
            for r in loaded.rejected { Console.note("train: skipped \(r)") }
            samples += loaded.samples
        }
        var set = TrainingSet(samples: samples)
        if let sameSubject {
            let added = set.addSameSubjectNegatives(seed: UInt64(seed), fraction: sameSubject,
                                                    otherForms: Double(config.questionFormFraction))
            Console.note("train: \(added) same-subject questions as extra unrelated queries")
        }
        let devSet = dev == "none" ? nil : TrainingSet(samples: try EditDataset.load(source: dev).samples)
        Console.note("train: \(set.count) examples from \(dataFiles.joined(separator: ", "))")

        let encoderDir = try ModelPaths.require(paths.encoder)
        let encoder = try BertEncoder(directory: encoderDir)
        let llmPath = try ModelPaths.require(paths.llm).path
        let fingerprints = try RecipeCheckpoint.Fingerprints.of(llm: llmPath, encoderDirectory: encoderDir)
        let encoderPrint = fingerprints.encoder
        func table(_ texts: [String], _ label: String) throws -> FeatureTable {
            try cachedFeatures(texts, label: label, encoder: encoder, fingerprint: encoderPrint)
        }
        let features = try table(set.texts, "features")
        if hardNegatives { set.findNeighbors(features: features) }
        let devFeatures = try devSet.map { try table($0.texts, "dev features") }
        let calibrationSet = try calibration.map { TrainingSet(samples: try EditDataset.load(source: $0).samples) }
        let calibrationFeatures = try calibrationSet.map { try table($0.texts, "calibration features") }

        // State: fresh or resumed.
        let statePath = (runDir as NSString).appendingPathComponent("state.rcpe")
        let params: RecipeParameters
        if let initPath {
            let start = try RecipeCheckpoint.load(initPath, expecting: fingerprints)
            if start.parameters.config.slotConditioning && !config.slotConditioning {
                config.slotConditioning = true
                Console.note("train: \(initPath) has slot-conditioned prompts: keeping them")
            }
            if let t = start.parameters.config.leadingToken, leadingToken == nil {
                config.leadingToken = t
                Console.note("train: \(initPath) puts token \(t) before its prompts: keeping it")
            }
            if subjectWeight == nil { config.subjectWeight = start.parameters.config.subjectWeight }
            if start.parameters.config.queryEncoderLayers > config.queryEncoderLayers {
                config.queryEncoderLayers = start.parameters.config.queryEncoderLayers
                Console.note("train: \(initPath) has its own query encoder: keeping it")
            }
            // Tensors by name into this run's layout (the shared value map into every slot's
            // with --slot-conditioning); the run's hyper-parameters replace the checkpoint's.
            do { params = try start.parameters.converted(to: config) } catch {
                throw UsageError("--init \(initPath): \(error) (--width sets the representation width)")
            }
        } else {
            params = RecipeParameters(config: config)
            RecipeInitializer.initialize(params, seed: UInt64(seed))
        }
        let queryEncoder = try QueryEncoder(encoder: encoder, parameters: params)
        var lowerStates: LowerStateTable?
        if queryEncoder.isFineTuned {
            // A layer the editor did not have yet (fresh, or converted by --init) starts as
            // the encoder's own; a trained one is never all zero.
            if params[.queryEncoder].allSatisfy({ $0 == 0 }) { queryEncoder.initialize() }
            lowerStates = LowerStateTable(texts: set.queryTexts, queryEncoder: queryEncoder,
                                          progress: ProgressBar.reporter("query encoder states"))
        }
        let editLoss = retrievalOnly ? nil : LlamaEditLoss(model: try LanguageModel(path: llmPath))
        let trainer = try RecipeTrainer(parameters: params, set: set, features: features,
                                        queryEncoder: lowerStates.map { (queryEncoder, $0) }, batchSize: batch,
                                        contrastiveBatchSize: max(batch, contrastiveBatch), seed: UInt64(seed), editLoss: editLoss)
        if !fresh, FileSystem.exists(statePath) {
            try trainer.resume(from: RecipeCheckpoint.load(statePath, expecting: fingerprints))
            Console.note("train: resumed from \(statePath) at step \(trainer.step)")
        }
        let log = try JSONLinesFile(path: (runDir as NSString).appendingPathComponent("train.jsonl"))
        var info: [String: String] = [
            "command": CommandLine.arguments.joined(separator: " "), "data": dataFiles.joined(separator: ","),
            "seed": "\(seed)", "batch": "\(batch)", "contrastive_batch": "\(contrastiveBatch)", "mode": retrievalOnly ? "retrieval-only" : freezeRetrieval ? "prompts-only" : "joint", "init": initPath ?? "initializer", "hard_negatives": "\(hardNegatives)", "freeze_knowledge": "\(freezeKnowledge)",
            "same_subject_negatives": "\(sameSubject ?? 0)", "slot_conditioning": "\(params.config.slotConditioning)",
            "leading_token": params.config.leadingToken.map(String.init) ?? "none",
            "subject_weight": "\(params.config.subjectWeight)", "question_views": "\(params.config.questionViewFraction)",
            "question_forms": "\(params.config.questionFormFraction)", "chat_fraction": "\(params.config.chatFraction)",
            "query_encoder_layers": "\(params.config.queryEncoderLayers)",
        ]
        var progress = ProgressBar(total: steps, label: "train")
        let start = Date()
        var last: StepReport?
        while trainer.step < steps {
            let r = try trainer.trainStep()
            last = r
            try log.append(r)
            var detail = String(format: "loss %.3f q2k %.3f q2s %.3f/%.3f", r.loss, r.q2k, r.q2sRelated, r.q2sUnrelated)
            if let rel = r.reliability, let gen = r.generality, let loc = r.locality {
                detail += String(format: " rel %.3f gen %.3f loc %.3f", rel, gen, loc)
            }
            progress.update(r.step, detail)
            if r.step % every == 0 || r.step == steps {
                info["steps"] = "\(r.step)"
                try trainer.checkpoint(fingerprints: fingerprints, training: info).write(to: statePath, dtype: .f32)
            }
        }
        let seconds = Date().timeIntervalSince(start)
        info["seconds_this_run"] = String(format: "%.1f", seconds)
        if let last { info["final_loss"] = String(format: "%.4f", last.loss) }
        if let calibrationSet, let calibrationFeatures, let calibrationRate, let calibration {
            let model = try RecipeModel(parameters: trainer.parameters)
            guard let factor = RetrievalEvaluation.sentinelScale(model: model, set: calibrationSet, features: calibrationFeatures,
                                                                queryFeatures: queryFeatures(calibrationSet, encoder: queryEncoder,
                                                                                             label: "calibration query features"),
                                                                falseRate: calibrationRate) else {
                throw UsageError("--calibrate-sentinel \(calibrationRate): no sentinel scale reaches it on \(calibration) (\(calibrationSet.count) examples)")
            }
            let sentinel = trainer.parameters[.sentinel]
            for i in sentinel.indices { sentinel[i] *= factor }
            info["sentinel_calibration"] = "scaled by \(factor) for \(calibrationRate) false retrieval on \(calibration)"
            Console.note("train: sentinel scaled by \(factor) (\(calibrationRate) false retrieval on \(calibration))")
        }
        try RecipeCheckpoint(parameters: trainer.parameters, fingerprints: fingerprints, training: info).write(to: out, dtype: .f16)

        var report: [String: Any] = ["steps": trainer.step, "seconds": seconds, "checkpoint": out]
        if let devSet {
            let r = RetrievalEvaluation.evaluate(model: try RecipeModel(parameters: trainer.parameters), set: devSet, features: devFeatures!,
                                                 queryFeatures: queryFeatures(devSet, encoder: queryEncoder, label: "dev query features"))
            report["retrieval"] = r.json
            if !json { print(r.text) }
        }
        if json { Console.json(report) } else { print("wrote \(out) after \(trainer.step) steps (\(String(format: "%.0f", seconds)) s this run)") }
        return .ok
    }
}
