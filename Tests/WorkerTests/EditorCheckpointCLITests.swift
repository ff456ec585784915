// Which editor the commands use when none is named: the one shipped in the build's resource
// bundle. An executable copied away from that bundle must refuse to run rather than answer
// with the untrained initialization.
import Foundation
import TestSupport
import Testing

@Suite struct EditorCheckpointCLITests {
    @Test func executableWithoutItsShippedEditorRefusesToRun() throws {
        let binary = try #require(IngestCrashTests.recipeBinary(), "no recipe binary: swift build -c release --product recipe")
        let dir = try Fixtures.temporaryDirectory("editor-missing").path
        let copy = dir + "/recipe"
        try FileManager.default.copyItem(atPath: binary, toPath: copy)
        let data = Fixtures.data.appendingPathComponent("wiki_recent/dev.json").path
        let eval = "'\(copy)' eval --data '\(data)' --edits 1 --samples 1 --method recipe --out '\(dir)/eval.json'"
        var (code, text) = try IngestCrashTests.shell(eval, binary: copy)
        #expect(code == 1 && text.contains("the editor shipped with this build is missing"), "\(code): \(text)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/eval.json"))
        // Named explicitly, the initialization still runs.
        (code, text) = try IngestCrashTests.shell(eval + " --checkpoint untrained", binary: copy)
        #expect(code == 0, "\(code): \(text)")
    }
}
