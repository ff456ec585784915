// The editor as a repository's encoder (`RecipeFactEncoder`): its fingerprint names what a
// fact's rows are made of and nothing else, so a repository re-encodes when the fact side
// of the editor changes and keeps its rows (sentinel rewritten) when only the query side
// does — a retrained stage 3 must not cost a re-encode and re-refinement of every fact.
import Foundation
import Models
import Recipe
import Storage
import Testing
import TestSupport

@Suite(.serialized) struct RecipeFactEncoderTests {
    static let loaded: Result<(LanguageModel, BertEncoder), Error> = Result {
        (try LanguageModel(path: Fixtures.smolLM2.path), try BertEncoder(directory: Fixtures.miniLM))
    }
    static let prints = RecipeCheckpoint.Fingerprints(llm: "llm", encoder: "encoder")

    /// The untrained editor (seed 1), with `change` applied to its parameters and config.
    func encoder(config: RecipeConfig = RecipeConfig(), _ change: (RecipeParameters) -> Void = { _ in }) throws -> RecipeFactEncoder {
        let (lm, bert) = try Self.loaded.get()
        let p = RecipeParameters(config: config)
        RecipeInitializer.initialize(p, seed: 1)
        change(p)
        return try RecipeFactEncoder(model: RecipeModel(parameters: p, llm: lm), encoder: bert, modelFingerprints: Self.prints)
    }

    /// Adds 0.5 to the first value of `t`.
    func nudge(_ t: RecipeTensor) -> (RecipeParameters) -> Void { { $0[t][0] += 0.5 } }

    @Test func theFingerprintNamesTheFactSideOnly() throws {
        let base = try encoder().fingerprint
        #expect(try encoder().fingerprint == base, "deterministic")
        #expect(base.hasPrefix("llm=llm;encoder=encoder;facts="))
        // Every tensor present: the query encoder layer and the slot-conditioning map too.
        var full = RecipeConfig()
        full.queryEncoderLayers = 1
        full.slotConditioning = true
        let fullBase = try encoder(config: full).fingerprint
        #expect(fullBase != base, "slot conditioning shapes the prompts")
        let layout = RecipeParameters(config: full)
        for t in RecipeTensor.allCases {
            #expect(!layout.range(t).isEmpty, "\(t.name) present")
            let changed = try encoder(config: full, nudge(t)).fingerprint
            if t.shapesFacts {
                #expect(changed != fullBase, "\(t.name) shapes facts: the fingerprint must change")
            } else {
                #expect(changed == fullBase, "\(t.name) acts at query time only: the fingerprint must stay")
            }
        }
        var fewerTokens = RecipeConfig()
        fewerTokens.statementTokens = 8
        #expect(try encoder(config: fewerTokens).fingerprint != base)
        var training = RecipeConfig()
        training.headLearningRate = 0.5
        training.subjectWeight = 3
        #expect(try encoder(config: training).fingerprint == base, "training settings and the retrieval rule make no rows")
    }

    /// A query-side change keeps every row and rewrites the sentinel; a fact-side change
    /// rebuilds the repository.
    @Test func aRepositoryKeepsItsRowsWhenOnlyTheQuerySideChanges() throws {
        let dir = try Fixtures.temporaryDirectory("fact-encoder")
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = try encoder()
        let repo = try Repository(path: dir.path, encoder: first)
        _ = try repo.commit([.add(statement: "Toko Yasuda plays the violin"),
                             .add(statement: "Final Cut Studio was developed by Microsoft")])
        let written = repo.snapshot()
        let rows = (1...2).map { (written.key(row: $0), written.prompt(row: $0)) }
        try repo.close()

        let retuned = try encoder { p in
            self.nudge(.sentinel)(p)
            self.nudge(.queryW1)(p)
        }
        let again = try Repository(path: dir.path, encoder: retuned)
        #expect(again.openReport.rebuilt == nil)
        #expect(again.openReport.rowsApplied == 0)
        let reopened = again.snapshot()
        #expect(reopened.key(row: 0) == retuned.sentinel().key)
        #expect(reopened.key(row: 0) != first.sentinel().key)
        for (row, (key, prompt)) in rows.enumerated() {
            #expect(reopened.key(row: row + 1) == key && reopened.prompt(row: row + 1) == prompt)
        }
        try again.close()

        let other = try Repository(path: dir.path, encoder: try encoder(nudge(.knowledgeW1)))
        #expect(other.openReport.rebuilt?.contains("fingerprint changed") == true)
        #expect(other.snapshot().key(row: 1) != rows[0].0)
        try other.close()
    }
}
