// `recipe ingest --verify` with the real editor: a healthy repository whose facts were
// encoded in time steps of other batch shapes than the verifying re-encode passes at the
// default tolerance, and a real corruption (a row holding another fact's prompt) fails.
import Foundation
import Posix
import TestSupport
import Testing

@Suite(.serialized, .enabled(if: WorkerProcess.available, "needs the recipe binary and the models (Pipelines/fetch-models.sh)"))
struct IngestVerifyTests {
    @Test func healthyRepositoryVerifiesAndASwappedRowDoesNot() throws {
        let binary = try #require(WorkerProcess.binary)
        let dir = try Fixtures.temporaryDirectory("ingest-verify").path
        let repo = dir + "/r"
        let models = "--models '\(Fixtures.models.path)'"
        // One step of 1 fact, one of 7: the verifying re-encode runs all 8 in one batch.
        var (code, text) = try IngestCrashTests.shell(
            "printf 'Verify statement zero is here\\n' | '\(binary)' ingest \(models) --repository '\(repo)' --stdin --once", binary: binary)
        #expect(code == 0, "\(text)")
        let seven = (1...7).map { "Verify statement number \($0) is about topic \($0 * 13)" }.joined(separator: "\\n")
        (code, text) = try IngestCrashTests.shell(
            "printf '\(seven)\\n' | '\(binary)' ingest \(models) --repository '\(repo)' --stdin --once", binary: binary)
        #expect(code == 0 && text.contains("\"added\":7"), "\(text)")

        (code, text) = try IngestCrashTests.shell("'\(binary)' ingest \(models) --verify --repository '\(repo)'", binary: binary)
        #expect(code == 0 && text.contains("\"ok\":true") && text.contains("\"rows_compared\":8"), "\(code): \(text)")

        // Row 1's prompt overwritten with row 2's: another fact's prompt, as a misdirected
        // write would leave it. Matrix files: a 4096-byte header, then rows of P*C floats.
        let prompts = try #require(try FileSystem.list(repo).first { $0.hasPrefix("prompts.") })
        var bytes = try FileSystem.readFile(repo + "/" + prompts)
        let row = 3 * 576 * 4
        bytes.replaceSubrange((4096 + row)..<(4096 + 2 * row), with: bytes[(4096 + 2 * row)..<(4096 + 3 * row)])
        try FileSystem.atomicReplace(repo + "/" + prompts, with: bytes)
        (code, text) = try IngestCrashTests.shell("'\(binary)' ingest \(models) --verify --repository '\(repo)'", binary: binary)
        #expect(code == 1 && text.contains("\"mismatched_rows\":1"), "\(code): \(text)")
    }
}
