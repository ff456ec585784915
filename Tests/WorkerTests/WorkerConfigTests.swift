import Testing
import Foundation
import Recipe
import Worker
import TestSupport

@Suite struct WorkerConfigTests {
    private func file(_ text: String) throws -> String {
        let url = try Fixtures.temporaryDirectory("config").appendingPathComponent("worker.json")
        try Data(text.utf8).write(to: url)
        return url.path
    }

    @Test func partialFileKeepsDefaults() throws {
        let c = try WorkerConfig.load(file(#"{"repository": "/tmp/r", "limits": {"maxClients": 3}, "socket": {"group": "recipe"}}"#))
        var expected = WorkerConfig()
        expected.repository = "/tmp/r"
        expected.limits.maxClients = 3
        expected.socket.group = "recipe"
        #expect(c == expected)
    }

    @Test func subjectWeightIsOptionalAndChecked() throws {
        #expect(try WorkerConfig.load(file("{}")).subjectWeight == nil)
        #expect(try WorkerConfig.load(file(#"{"subjectWeight": 0}"#)).subjectWeight == 0)
        let bad = try file(#"{"subjectWeight": -2}"#)
        #expect(throws: WorkerConfigError.invalid(path: bad, key: "subjectWeight", reason: "must be a number ≥ 0")) { try WorkerConfig.load(bad) }
    }

    @Test func questionViewIsOnUnlessTurnedOff() throws {
        #expect(try WorkerConfig.load(file("{}")).questionView)
        #expect(try !WorkerConfig.load(file(#"{"questionView": false}"#)).questionView)
        let bad = try file(#"{"questionView": "no"}"#)
        #expect(throws: WorkerConfigError.self) { try WorkerConfig.load(bad) }
    }

    @Test func refinementIsStandardUnlessSetAndIsChecked() throws {
        #expect(try WorkerConfig.load(file("{}")).refinement == .standard)
        let c = try WorkerConfig.load(file(#"{"refinement": {"steps": 0}}"#))
        #expect(c.refinement == PromptRefiner.Options(steps: 0, learningRate: PromptRefiner.Options.standard.learningRate,
                                                      stopLoss: PromptRefiner.Options.standard.stopLoss))
        let bad = try file(#"{"refinement": {"steps": 4, "learningRate": -1}}"#)
        #expect(throws: WorkerConfigError.invalid(path: bad, key: "refinement", reason: "the learning rate must be positive, got -1.0")) {
            try WorkerConfig.load(bad)
        }
        #expect(try WorkerConfig.load(file(#"{"refinement": {"statements": true}}"#)).refinement.statements)
        let typo = try file(#"{"refinement": {"step": 4}}"#)
        #expect(throws: WorkerConfigError.invalid(path: typo, key: "refinement.step", reason: "is not a known setting")) { try WorkerConfig.load(typo) }
    }

    @Test func promptStatesAreOnUnlessTurnedOffAndAreChecked() throws {
        let d = try WorkerConfig.load(file("{}")).promptStates
        #expect(d.capacity == 4096 && d.file == "prompt-states" && d.atIngestion)
        let off = try WorkerConfig.load(file(#"{"promptStates": {"capacity": 0}}"#))
        #expect(off.promptStates.capacity == 0 && off.resolve(off.promptStates.file) == "/var/lib/recipe/prompt-states")
        let bad = try file(#"{"promptStates": {"capacity": -5}}"#)
        #expect(throws: WorkerConfigError.invalid(path: bad, key: "promptStates.capacity", reason: "must be between 0 and 1000000 (145 GB for SmolLM2)")) {
            try WorkerConfig.load(bad)
        }
        let empty = try file(#"{"promptStates": {"file": ""}}"#)
        #expect(throws: WorkerConfigError.invalid(path: empty, key: "promptStates.file", reason: "must not be empty")) { try WorkerConfig.load(empty) }
    }

    @Test func pipeRejectionsAreKeptInTheRepositoryUnlessSet() throws {
        let d = try WorkerConfig.load(file("{}"))
        #expect(d.pipeRejections == "rejected" && d.resolve(d.pipeRejections) == "/var/lib/recipe/rejected")
        #expect(try WorkerConfig.load(file(#"{"pipeRejections": "/srv/rejected"}"#)).pipeRejections == "/srv/rejected")
        let bad = try file(#"{"pipeRejections": ""}"#)
        #expect(throws: WorkerConfigError.invalid(path: bad, key: "pipeRejections", reason: "must not be empty")) { try WorkerConfig.load(bad) }
    }

    @Test func maxQuestionTokensIsWellUnderTheContextAndIsChecked() throws {
        #expect(try WorkerConfig.load(file("{}")).limits.maxQuestionTokens == 512)
        #expect(try WorkerConfig.load(file(#"{"limits": {"maxQuestionTokens": 64}}"#)).limits.maxQuestionTokens == 64)
        for bad in ["0", "-1", "100000"] {
            let p = try file(#"{"limits": {"maxQuestionTokens": \#(bad)}}"#)
            #expect(throws: WorkerConfigError.invalid(path: p, key: "limits.maxQuestionTokens", reason: "must be between 1 and 32768")) {
                try WorkerConfig.load(p)
            }
        }
        let shipped = try WorkerConfig.load(Fixtures.repoRoot.appendingPathComponent("Config/worker.json").path)
        #expect(shipped.limits.maxQuestionTokens == WorkerConfig().limits.maxQuestionTokens)
    }

    @Test func shippedConfigIsValid() throws {
        let c = try WorkerConfig.load(Fixtures.repoRoot.appendingPathComponent("Config/worker.json").path)
        #expect(c.socket.mode == "0600")
    }

    @Test func unknownKeysAreNamed() throws {
        let p1 = try file(#"{"repositry": "/tmp"}"#)
        #expect(throws: WorkerConfigError.invalid(path: p1, key: "repositry", reason: "is not a known setting")) { try WorkerConfig.load(p1) }
        let p2 = try file(#"{"limits": {"maxClient": 3}}"#)
        #expect(throws: WorkerConfigError.invalid(path: p2, key: "limits.maxClient", reason: "is not a known setting")) { try WorkerConfig.load(p2) }
    }

    @Test func wrongTypesAndRangesAreNamed() throws {
        let p1 = try file(#"{"limits": {"maxClients": "many"}}"#)
        #expect(throws: WorkerConfigError.invalid(path: p1, key: "limits.maxClients", reason: "has the wrong type")) { try WorkerConfig.load(p1) }
        let p2 = try file(#"{"socket": {"mode": "rw"}}"#)
        #expect(throws: WorkerConfigError.invalid(path: p2, key: "socket.mode", reason: "must be an octal mode like \"0600\"")) { try WorkerConfig.load(p2) }
        let p3 = try file(#"{"limits": 5}"#)
        #expect(throws: WorkerConfigError.invalid(path: p3, key: "limits", reason: "must be an object")) { try WorkerConfig.load(p3) }
        let p4 = try file("[1, 2]")
        #expect(throws: WorkerConfigError.unreadable(path: p4, reason: "expected a JSON object")) { try WorkerConfig.load(p4) }
        let p5 = try file(#"{"limits": {"defaultGenerationTokens": 999}}"#)
        #expect(throws: WorkerConfigError.self) { try WorkerConfig.load(p5) }
        let p6 = try file(#"{"limits": {"promptCacheEntries": -1}}"#)
        #expect(throws: WorkerConfigError.invalid(path: p6, key: "limits.promptCacheEntries", reason: "must be between 0 and 10000")) {
            try WorkerConfig.load(p6)
        }
    }
}
