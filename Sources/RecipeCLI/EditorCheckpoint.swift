// Finding the editor checkpoint: an explicit file, "untrained" (the deterministic
// initialization), or the checkpoint shipped for the default models; and the editor as a
// repository's encoder.
import Foundation
import Models
import Recipe

enum EditorCheckpoint {
    /// The shipped checkpoint for SmolLM2-135M-Instruct + all-MiniLM-L6-v2, when this build has one.
    static var shipped: String? {
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let candidates = [
            exe.deletingLastPathComponent().appendingPathComponent("recipe_RecipeCLI.resources/editor-smollm2-135m.rcpe"),
            exe.deletingLastPathComponent().appendingPathComponent("editor-smollm2-135m.rcpe"),
        ]
        return candidates.first { FileManager.default.fileExists(atPath: $0.path) }?.path
    }

    /// The editor, bound to `llm` (its prompts attend over the LLM's token embeddings).
    static func load(_ argument: String?, fingerprints: RecipeCheckpoint.Fingerprints, seed: UInt64,
                     llm: LanguageModel) throws -> (RecipeModel, String) {
        if argument == "untrained" || (argument == nil && shipped == nil) {
            if argument == nil { Console.note("recipe: no trained editor in this build; using the untrained initialization (seed \(seed))") }
            let p = RecipeParameters(config: RecipeConfig())
            RecipeInitializer.initialize(p, seed: seed)
            return (RecipeModel(parameters: p, llm: llm), "untrained(seed \(seed))")
        }
        let path = argument ?? shipped!
        let ck = try RecipeCheckpoint.load(path, expecting: fingerprints)
        return (RecipeModel(parameters: ck.parameters, llm: llm), path)
    }

    /// The editor over the encoder in `paths` as a repository's encoder, and the
    /// checkpoint's name. `recipe serve`, `recipe ingest` and `recipe bench serve` all open
    /// repositories with it, so they agree on the fingerprint the matrices are bound to.
    /// The LLM is loaded from `paths` unless given.
    static func factEncoder(_ paths: ModelPaths, checkpoint: String?, seed: UInt64,
                            llm given: LanguageModel? = nil) throws -> (encoder: RecipeFactEncoder, checkpointName: String) {
        let llm = try given ?? LanguageModel(path: ModelPaths.require(paths.llm).path)
        let encoderDir = try ModelPaths.require(paths.encoder)
        let bert = try BertEncoder(directory: encoderDir)
        let fingerprints = try RecipeCheckpoint.Fingerprints.of(llm: llm.path, encoderDirectory: encoderDir)
        let (model, name) = try load(checkpoint, fingerprints: fingerprints, seed: seed, llm: llm)
        return (RecipeFactEncoder(model: model, encoder: bert, modelFingerprints: fingerprints, checkpointName: name), name)
    }
}
