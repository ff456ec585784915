// Where the model files are: `--models DIR`, else `$RECIPE_MODELS`, else the directory
// that `Pipelines/fetch-models.sh` fills (`${XDG_CACHE_HOME:-~/.cache}/recipe/models`).
import Foundation

public struct ModelPaths: Sendable, Equatable {
    public let directory: URL

    public static let llmFileName = "SmolLM2-135M-Instruct.Q4_1.gguf"
    public static let encoderDirectoryName = "all-MiniLM-L6-v2"

    /// The default models directory when neither a flag nor `RECIPE_MODELS` is given.
    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let p = environment["RECIPE_MODELS"], !p.isEmpty { return URL(fileURLWithPath: p) }
        let cache = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            ?? URL(fileURLWithPath: environment["HOME"] ?? NSHomeDirectory()).appendingPathComponent(".cache")
        return cache.appendingPathComponent("recipe/models")
    }

    public init(directory: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.directory = directory.map { URL(fileURLWithPath: $0) } ?? Self.defaultDirectory(environment: environment)
    }

    /// The default LLM (a GGUF file).
    public var llm: URL { directory.appendingPathComponent(Self.llmFileName) }
    /// The default knowledge encoder (a directory with model.safetensors, vocab.txt, config.json).
    public var encoder: URL { directory.appendingPathComponent(Self.encoderDirectoryName) }

    /// Throws `ModelError.notFound` with the fix when `url` does not exist.
    public static func require(_ url: URL) throws -> URL {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw ModelError.notFound(path: url.path, hint: "run Pipelines/fetch-models.sh, or pass --models DIR / set RECIPE_MODELS")
        }
        return url
    }
}
