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
        // Copied by cp in the shell, not by this process: a child another test forks while
        // this process holds the copy open for writing would inherit that descriptor, and
        // executing the copy would then fail with ETXTBSY (exit 126).
        var (code, text) = try IngestCrashTests.shell("cp '\(binary)' '\(copy)'", binary: binary)
        #expect(code == 0, "\(code): \(text)")
        let data = Fixtures.data.appendingPathComponent("wiki_recent/dev.json").path
        let eval = "'\(copy)' eval --data '\(data)' --edits 1 --samples 1 --method recipe --out '\(dir)/eval.json'"
        (code, text) = try IngestCrashTests.shell(eval, binary: copy)
        #expect(code == 1 && text.contains("the editor shipped with this build is missing"), "\(code): \(text)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/eval.json"))
        // Named explicitly, the initialization still runs.
        (code, text) = try IngestCrashTests.shell(eval + " --checkpoint untrained", binary: copy)
        #expect(code == 0, "\(code): \(text)")
    }
}

/// `recipe eval --retrieval`: the shipped editor's retrieval report, with its own subject
/// rule unless the command line replaces it.
@Suite struct RetrievalEvalCLITests {
    @Test func reportsRetrievalWithTheEditorsSubjectRuleAndTheQuestionView() throws {
        let binary = try #require(IngestCrashTests.recipeBinary(), "no recipe binary: swift build -c release --product recipe")
        let dir = try Fixtures.temporaryDirectory("eval-retrieval").path
        let data = Fixtures.data.appendingPathComponent("counterfact/dev.json").path
        func run(_ extra: String) throws -> [String: Any] {
            let (code, text) = try IngestCrashTests.shell(
                "'\(binary)' eval --data '\(data)@0:200' --retrieval --out '\(dir)/r.json' \(extra)", binary: binary)
            #expect(code == 0 && text.contains("retrieval on 200 facts"), "\(code): \(text)")
            let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/r.json")))
            return try #require(object as? [String: Any])
        }
        let shipped = try run("")
        let dense = try run("--subject-weight 0")
        let weight = (shipped["config"] as? [String: Any])?["subject_weight"] as? Double ?? 0
        #expect(weight > 0, "\(shipped)")
        #expect((dense["config"] as? [String: Any])?["subject_weight"] as? Double == 0)
        let on = try #require(shipped["retrieval"] as? [String: Any]), off = try #require(dense["retrieval"] as? [String: Any])
        #expect(on["facts"] as? Int == 200)
        // Both rules rank the same dense candidates; the subject rule only rescores them.
        for key in ["edit", "paraphrase", "false_retrieval", "paraphrase_top1"] {
            let a = try #require(on[key] as? Double), b = try #require(off[key] as? Double)
            #expect((0...1).contains(a) && (0...1).contains(b), "\(key): \(a), \(b)")
        }
        #expect(try #require(on["paraphrase"] as? Double) >= (off["paraphrase"] as? Double ?? 1), "\(on) vs \(off)")
        // The question view is on unless turned off, and only adds paraphrase recall here
        // (CounterFact puts a sentence in front of some paraphrases, none of its edit prompts).
        let whole = try run("--no-question-view")
        #expect((shipped["config"] as? [String: Any])?["question_view"] as? Bool == true)
        #expect((whole["config"] as? [String: Any])?["question_view"] as? Bool == false)
        let w = try #require(whole["retrieval"] as? [String: Any])
        #expect(try #require(on["paraphrase"] as? Double) >= (w["paraphrase"] as? Double ?? 1) && on["edit"] as? Double == w["edit"] as? Double,
                "\(on) vs \(w)")

        let (code, text) = try IngestCrashTests.shell("'\(binary)' eval --data '\(data)' --retrieval --subject-weight -1", binary: binary)
        #expect(code == 2 && text.contains("--subject-weight"), "\(code): \(text)")

        // --details: one line per query, agreeing with the report.
        let detailed = try run("--details '\(dir)/d.jsonl'")
        let lines = try String(contentsOfFile: dir + "/d.jsonl", encoding: .utf8).split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        let kinds = Dictionary(grouping: lines) { $0["kind"] as? String ?? "?" }
        #expect(kinds.mapValues(\.count) == ["edit": 200, "paraphrase": 200, "unrelated": 200], "\(kinds.keys)")
        let right = (kinds["paraphrase"] ?? []).filter { line in (line["retrieved"] as? Int).map { $0 == line["sample"] as? Int } ?? false }.count
        let reported = try #require((detailed["retrieval"] as? [String: Any])?["paraphrase"] as? Double)
        #expect(abs(Double(right) / 200 - reported) < 1e-9, "\(right) of 200 against \(reported)")
        let falseHits = (kinds["unrelated"] ?? []).filter { $0["retrieved"] != nil }.count
        #expect(abs(Double(falseHits) / 200 - ((detailed["retrieval"] as? [String: Any])?["false_retrieval"] as? Double ?? -1)) < 1e-9)
    }
}
