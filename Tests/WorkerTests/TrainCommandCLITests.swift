// `recipe train` options checked end to end: the run directory is created with its parents
// before any data is loaded (one that cannot be created is a usage error naming --run), and
// --question-views takes a fraction that the editor's config records.
import Foundation
import TestSupport
import Testing

@Suite struct TrainCommandCLITests {
    @Test func runDirectoryIsCreatedWithItsParents() throws {
        let binary = try #require(IngestCrashTests.recipeBinary(), "no recipe binary: swift build -c release --product recipe")
        let dir = try Fixtures.temporaryDirectory("train-run").path
        let data = Fixtures.data.appendingPathComponent("counterfact/train.json").path
        let train = "'\(binary)' train --data '\(data)@:80' --dev none --steps 0"
        var (code, text) = try IngestCrashTests.shell(train + " --run '\(dir)/a/b/run'", binary: binary)
        #expect(code == 0, "\(code): \(text)")
        #expect(FileManager.default.fileExists(atPath: dir + "/a/b/run/editor.rcpe"))

        // A path under a regular file cannot be a directory.
        #expect(FileManager.default.createFile(atPath: dir + "/file", contents: Data()))
        (code, text) = try IngestCrashTests.shell(train + " --run '\(dir)/file/run'", binary: binary)
        #expect(code == 2 && text.contains("--run") && text.contains("cannot create the directory"), "\(code): \(text)")
    }

    @Test func questionViewsTakeAFraction() throws {
        let binary = try #require(IngestCrashTests.recipeBinary(), "no recipe binary: swift build -c release --product recipe")
        let dir = try Fixtures.temporaryDirectory("train-views").path
        let data = Fixtures.data.appendingPathComponent("counterfact/train.json").path
        let train = "'\(binary)' train --data '\(data)@:80' --dev none --steps 0 --retrieval-only --run '\(dir)/run'"
        var (code, text) = try IngestCrashTests.shell(train + " --question-views 1.5", binary: binary)
        #expect(code == 2 && text.contains("--question-views"), "\(code): \(text)")
        (code, text) = try IngestCrashTests.shell(train + " --question-views 0.5", binary: binary)
        #expect(code == 0, "\(code): \(text)")
        // The editor's config records it (the checkpoint's header is JSON).
        let editor = try Data(contentsOf: URL(fileURLWithPath: dir + "/run/editor.rcpe"))
        #expect(editor.range(of: Data(#""questionViewFraction":0.5"#.utf8)) != nil)
    }
}
