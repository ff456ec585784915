// `recipe train` options checked end to end: the run directory is created with its parents
// before any data is loaded (one that cannot be created is a usage error naming --run), and
// --question-views takes a fraction that the editor's config records.
import Foundation
import TestSupport
import Testing

@Suite struct TrainCommandCLITests {
    /// `recipe train` on the first 80 CounterFact training records, no steps, no dev set,
    /// and a fresh scratch directory; `extra` follows on the command line.
    static func train(_ scratch: String, _ extra: String) throws -> (code: Int32, text: String, dir: String) {
        let binary = try #require(IngestCrashTests.recipeBinary(), "no recipe binary: swift build -c release --product recipe")
        let dir = try Fixtures.temporaryDirectory(scratch).path
        let data = Fixtures.data.appendingPathComponent("counterfact/train.json").path
        let command = "'\(binary)' train --data '\(data)@:80' --dev none --steps 0 " + extra.replacingOccurrences(of: "DIR", with: dir)
        let (code, text) = try IngestCrashTests.shell(command, binary: binary)
        return (code, text, dir)
    }

    @Test func runDirectoryIsCreatedWithItsParents() throws {
        let made = try Self.train("train-run", "--run 'DIR/a/b/run'")
        #expect(made.code == 0, "\(made.code): \(made.text)")
        #expect(FileManager.default.fileExists(atPath: made.dir + "/a/b/run/editor.rcpe"))

        // A path under a regular file cannot be a directory.
        let file = try Fixtures.temporaryDirectory("train-file").path + "/file"
        #expect(FileManager.default.createFile(atPath: file, contents: Data()))
        let refused = try Self.train("train-run", "--run '\(file)/run'")
        #expect(refused.code == 2 && refused.text.contains("--run") && refused.text.contains("cannot create the directory"),
                "\(refused.code): \(refused.text)")
    }

    @Test func questionViewsTakeAFraction() throws {
        let bad = try Self.train("train-views", "--retrieval-only --run 'DIR/run' --question-views 1.5")
        #expect(bad.code == 2 && bad.text.contains("--question-views"), "\(bad.code): \(bad.text)")
        let made = try Self.train("train-views", "--retrieval-only --run 'DIR/run' --question-views 0.5")
        #expect(made.code == 0, "\(made.code): \(made.text)")
        // The editor's config records it (the checkpoint's header is JSON).
        let editor = try Data(contentsOf: URL(fileURLWithPath: made.dir + "/run/editor.rcpe"))
        #expect(editor.range(of: Data(#""questionViewFraction":0.5"#.utf8)) != nil)
    }
}
