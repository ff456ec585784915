// Finding the editor checkpoint: an explicit file, "untrained" (the deterministic
// initialization), or the checkpoint shipped for the default models; and the editor as a
// repository's encoder.
import Foundation
import Models
import Recipe

enum EditorCheckpoint {
    /// Where the checkpoint shipped for SmolLM2-135M-Instruct + all-MiniLM-L6-v2 may be: the
    /// build's resource bundle next to the executable, or the file itself beside it.
    static var shippedCandidates: [String] {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        return [dir.appendingPathComponent("recipe_RecipeCLI.resources/editor-smollm2-135m.rcpe").path,
                dir.appendingPathComponent("editor-smollm2-135m.rcpe").path]
    }

    /// The editor, bound to `llm` (its prompts attend over the LLM's token embeddings). Every
    /// build ships a trained editor, so when none is given and it is not found (the executable
    /// copied without its resource bundle) this fails rather than answer with an untrained one.
    static func load(_ argument: String?, fingerprints: RecipeCheckpoint.Fingerprints, seed: UInt64,
                     llm: LanguageModel) throws -> (RecipeModel, String) {
        if argument == "untrained" {
            let p = RecipeParameters(config: RecipeConfig())
            RecipeInitializer.initialize(p, seed: seed)
            return (try RecipeModel(parameters: p, llm: llm), "untrained(seed \(seed))")
        }
        let candidates = shippedCandidates
        guard let path = argument ?? candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw RecipeError.checkpoint(file: candidates[0], reason: """
                the editor shipped with this build is missing (also looked for \(candidates[1])): copy the \
                executable together with its recipe_RecipeCLI.resources directory, or name an editor with \
                --checkpoint FILE ("untrained" for the initialization)
                """)
        }
        let ck = try RecipeCheckpoint.load(path, expecting: fingerprints)
        return (try RecipeModel(parameters: ck.parameters, llm: llm), path)
    }

    /// The editor over the encoder in `paths` as a repository's encoder, and the
    /// checkpoint's name. `recipe serve`, `recipe ingest` and `recipe bench serve` all open
    /// repositories with it, so they agree on the fingerprint the matrices are bound to.
    /// The LLM is loaded from `paths` unless given. `refinement` with steps refines the
    /// prompts of facts that name their question and target (`PromptRefiner`).
    static func factEncoder(_ paths: ModelPaths, checkpoint: String?, seed: UInt64, refinement: PromptRefiner.Options,
                            llm given: LanguageModel? = nil) throws -> (encoder: RecipeFactEncoder, checkpointName: String) {
        let llm = try given ?? LanguageModel(path: ModelPaths.require(paths.llm).path)
        let encoderDir = try ModelPaths.require(paths.encoder)
        let bert = try BertEncoder(directory: encoderDir)
        let fingerprints = try RecipeCheckpoint.Fingerprints.of(llm: llm.path, encoderDirectory: encoderDir)
        let (model, name) = try load(checkpoint, fingerprints: fingerprints, seed: seed, llm: llm)
        let refiner = refinement.steps > 0 ? try PromptRefiner(lm: llm, options: refinement) : nil
        return (try RecipeFactEncoder(model: model, encoder: bert, modelFingerprints: fingerprints, refiner: refiner), name)
    }
}
