// Finding the editor checkpoint: an explicit file, "untrained" (the deterministic
// initialization), or the checkpoint shipped for the default models.
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
}
