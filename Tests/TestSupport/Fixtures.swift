// Locations of the shared golden fixtures, the benchmark data and the fetched models, for
// every test target. Tests never skip when a file is missing: they fail and say how to
// get it.
import Foundation

public enum Fixtures {
    /// The repository root (this file is Tests/TestSupport/Fixtures.swift).
    public static let repoRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `../shared` next to the repository, or `$RECIPE_SHARED`.
    public static let shared: URL = {
        if let p = ProcessInfo.processInfo.environment["RECIPE_SHARED"] { return URL(fileURLWithPath: p) }
        return repoRoot.deletingLastPathComponent().appendingPathComponent("shared")
    }()

    public static var goldens: URL { shared.appendingPathComponent("goldens") }
    public static var data: URL { shared.appendingPathComponent("data") }

    /// The fetched models: `$RECIPE_MODELS`, else `${XDG_CACHE_HOME:-~/.cache}/recipe/models`
    /// (what `Pipelines/fetch-models.sh` fills).
    public static let models: URL = {
        let env = ProcessInfo.processInfo.environment
        if let p = env["RECIPE_MODELS"], !p.isEmpty { return URL(fileURLWithPath: p) }
        let cache = env["XDG_CACHE_HOME"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache")
        return cache.appendingPathComponent("recipe/models")
    }()

    public static var smolLM2: URL { models.appendingPathComponent("SmolLM2-135M-Instruct.Q4_1.gguf") }
    public static var miniLM: URL { models.appendingPathComponent("all-MiniLM-L6-v2") }

    public struct Missing: Error, CustomStringConvertible {
        public let path: String
        public var description: String {
            "missing fixture \(path): run Pipelines/fetch-models.sh for models; ../shared must sit next to the repository"
        }
    }

    /// The file's bytes, or a `Missing` error naming it.
    public static func read(_ url: URL) throws -> Data {
        guard let d = FileManager.default.contents(atPath: url.path) else { throw Missing(path: url.path) }
        return d
    }

    /// A golden JSON file from `../shared/goldens`, decoded.
    public static func golden<T: Decodable>(_ name: String, as type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: read(goldens.appendingPathComponent(name)))
    }

    /// A fresh temporary directory, removed by the caller or left for the OS.
    public static func temporaryDirectory(_ tag: String = "test") throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("recipe-\(tag)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
