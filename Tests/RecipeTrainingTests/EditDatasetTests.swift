import Testing
import Foundation
import Recipe
import RecipeTraining
import TestSupport

@Suite struct EditDatasetTests {
    private func write(_ text: String) throws -> URL {
        let dir = try Fixtures.temporaryDirectory("dataset")
        let url = dir.appendingPathComponent("data.json")
        try Data(text.utf8).write(to: url)
        return url
    }

    @Test func readsTheSharedBenchmarks() throws {
        let cf = try EditDataset.load(Fixtures.data.appendingPathComponent("counterfact/dev.json")).samples
        #expect(cf.count == 1919)
        #expect(cf[0].request == PromptTarget(prompt: "BBC One, by", target: "Sega"))
        #expect(cf[0].generality.count == 1 && cf[0].locality.count == 1)
        let zsFile = Fixtures.data.appendingPathComponent("zsre/train.json")
        let zsre = try EditDataset.load(zsFile)
        // Two records of the published file have an empty new target: set aside, named.
        #expect(zsre.samples.count == 998)
        #expect(zsre.rejected == [534, 723].map { .dataset(file: zsFile.path, record: $0, field: "alt", reason: "is empty") })
        #expect(zsre.samples[0].request.target == "unmanned aircraft")
        let wr = try EditDataset.load(Fixtures.data.appendingPathComponent("wiki_recent/dev.json")).samples
        #expect(wr.count == 570)
        #expect(wr[0].generality.isEmpty)
        #expect(wr[0].locality.first?.target == "Cēsis")
    }

    @Test func missingFieldNamesFileRecordAndField() throws {
        let url = try write("""
        [{"prompt": "A is", "target_new": "B", "rephrase_prompt": "A:", "locality_prompt": "C is", "locality_ground_truth": "D"},
         {"prompt": "E is", "rephrase_prompt": "E:", "locality_prompt": "C is", "locality_ground_truth": "D"}]
        """)
        let loaded = try EditDataset.load(url)
        #expect(loaded.samples.count == 1)
        #expect(loaded.rejected == [.dataset(file: url.path, record: 1, field: "target_new", reason: "missing")])
    }

    @Test func wrongTypeEmptyValueAndBadJSON() throws {
        let typed = try write(#"[{"src": "Q?", "alt": 3, "rephrase": "Q2?", "loc": "L", "loc_ans": "M"}]"#)
        #expect(try EditDataset.load(typed).rejected == [.dataset(file: typed.path, record: 0, field: "alt", reason: "expected a string")])
        let empty = try write(#"[{"src": "Q?", "alt": " ", "rephrase": "Q2?", "loc": "L", "loc_ans": "M"}]"#)
        #expect(try EditDataset.load(empty).rejected == [.dataset(file: empty.path, record: 0, field: "alt", reason: "is empty")])
        let bad = try write("[{")
        #expect(throws: RecipeError.self) { try EditDataset.load(bad) }
        let notArray = try write(#"{"a": 1}"#)
        #expect(throws: RecipeError.dataset(file: notArray.path, record: nil, field: nil, reason: "expected a JSON array of records")) {
            try EditDataset.load(notArray)
        }
        let unknown = try write(#"[{"question": "x"}]"#)
        #expect(throws: RecipeError.self) { try EditDataset.load(unknown) }
    }

    @Test func recordRangesSplitAFileAndKeepRecordNumbers() throws {
        let zs = Fixtures.data.appendingPathComponent("zsre/train.json").path
        let head = try EditDataset.load(source: zs + "@:800"), tail = try EditDataset.load(source: zs + "@800:")
        let all = try EditDataset.load(source: zs)
        #expect(head.samples.count == 798 && tail.samples.count == 200)
        #expect(head.samples + tail.samples == all.samples)
        #expect(head.rejected == all.rejected)  // 534 and 723, numbered as in the whole file
        #expect(try EditDataset.load(source: zs + "@990:2000").samples == Array(all.samples.suffix(10)))
        #expect(EditDataset.filePath(source: zs + "@800:") == zs)
        #expect(EditDataset.filePath(source: zs) == zs)
        for bad in ["@5:2", "@x:", "@-1:3"] {
            #expect(throws: RecipeError.self) { try EditDataset.load(source: zs + bad) }
        }
    }
}
