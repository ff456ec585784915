// The crash test of `recipe ingest` in its short form (Pipelines/crash-test.sh --short):
// kill -9 at random moments, restarts, then damage cases; the script checks that every
// acknowledged fact is present exactly once and the matrices equal a re-encode of the log.
// Also with the real models, killed while refining (--models). The long form is run by
// hand: `Pipelines/crash-test.sh --long` (see Pipelines/README.md).
import Foundation
import Glibc
import Posix
import Storage
import TestSupport
import Testing
import Worker

@Suite struct IngestCrashTests {
    /// The `recipe` binary built with this test bundle (same directory), else the usual
    /// build directories.
    static func recipeBinary() -> String? {
        let bundleDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        var candidates = [bundleDir.appendingPathComponent("recipe").path,
                          bundleDir.deletingLastPathComponent().appendingPathComponent("recipe").path]
        for config in ["release", "debug"] {
            candidates.append(Fixtures.repoRoot.appendingPathComponent(".build/\(config)/recipe").path)
        }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs `Pipelines/crash-test.sh` with `mode` and checks that every check passed;
    /// returns its output.
    @discardableResult
    func crashTest(_ mode: String) throws -> String {
        let binary = try #require(Self.recipeBinary(),
                                  "no recipe binary next to the test bundle or in .build: swift build -c release --product recipe")
        let script = Fixtures.repoRoot.appendingPathComponent("Pipelines/crash-test.sh").path
        let (code, text) = try Self.shell("exec bash '\(script)' \(mode)", binary: binary)
        #expect(code == 0, "crash-test.sh \(mode) failed (status \(code)):\n\(text)")
        #expect(text.contains("crash-test: PASSED"), "\(text)")
        return text
    }

    @Test func shortCrashTestPasses() throws {
        try crashTest("--short")
    }

    /// The same with the real models: every fact's prompt is refined through the LLM at
    /// ingestion, and the worker is killed while it refines (a few minutes).
    @Test func crashTestWithTheModelsPasses() throws {
        let text = try crashTest("--models")
        #expect(text.contains("the matrices hold refined prompts"), "\(text)")
    }

    /// Exit codes and messages of `recipe ingest`: usage errors 2, failures 1, bad lines
    /// reported with their line and the rest ingested (0).
    @Test func ingestCommandLineContract() throws {
        let binary = try #require(Self.recipeBinary(), "no recipe binary: swift build -c release --product recipe")
        let dir = try Fixtures.temporaryDirectory("ingest-cli").path
        var (code, text) = try Self.shell("'\(binary)' ingest --repository '\(dir)/r'", binary: binary)
        #expect(code == 2 && text.contains("no source"), "\(code): \(text)")
        (code, text) = try Self.shell("'\(binary)' ingest --fake-encoder --repository '\(dir)/r' --stdin --bogus", binary: binary)
        #expect(code == 2 && text.contains("--bogus"), "\(code): \(text)")
        (code, text) = try Self.shell("'\(binary)' ingest --fake-encoder --verify --repository '\(dir)/nothing'", binary: binary)
        #expect(code == 1 && text.contains("not a repository"), "\(code): \(text)")
        let facts = "Good fact one\\n{\\\"prompt\\\": 1}\\nGood fact two\\n"
        (code, text) = try Self.shell("printf '\(facts)' | '\(binary)' ingest --fake-encoder --repository '\(dir)/r' --stdin --once --print-ids",
                                      binary: binary)
        #expect(code == 0, "\(code): \(text)")
        #expect(text.contains("\"added\":2") && text.contains("\"rejected\":1") && text.contains("<stdin>:2:"), "\(text)")
        (code, text) = try Self.shell("'\(binary)' ingest --fake-encoder --verify --repository '\(dir)/r'", binary: binary)
        #expect(code == 0 && text.contains("\"ok\":true") && text.contains("\"live_facts\":2"), "\(code): \(text)")
    }

    /// Runs `command` with bash, stdout and stderr together, RECIPE_BIN set; posix_spawn with
    /// an empty signal mask and default dispositions, because the test runner's threads
    /// block most signals and a child inheriting that could not be stopped by SIGTERM (the
    /// script's feeders, the worker's graceful-shutdown path). Returns (exit status, output).
    static func shell(_ command: String, binary: String) throws -> (Int32, String) {
        let output = try Fixtures.temporaryDirectory("ingest-shell").path + "/output.txt"
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t(), all = sigset_t()
        sigemptyset(&empty)
        sigfillset(&all)
        sigdelset(&all, SIGKILL)
        sigdelset(&all, SIGSTOP)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ["/bin/bash", "-c", "( \(command) ) > '\(output)' 2>&1"]
        var env = ProcessInfo.processInfo.environment
        env["RECIPE_BIN"] = binary
        let envp = env.map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = envp.map { strdup($0) } + [nil]
        defer { (cArgs + cEnv).forEach { free($0) } }
        let rc = posix_spawn(&pid, "/bin/bash", nil, &attributes, cArgs, cEnv)
        try #require(rc == 0, "posix_spawn of bash failed: \(String(cString: strerror(rc)))")
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? "(no output)"
        let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (code, text)
    }
}
