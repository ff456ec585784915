// Rejected lines of pipes and standard input: they exist nowhere else once read, so every
// one is written to the source's rejection log ("source:line: reason", then the line after
// a tab), whatever the worker's log shows; the file rotates at its size cap.
import Foundation
import Glibc
import Posix
import Storage
import TestSupport
import Testing
import Worker

@Suite struct PipeRejectionTests {
    @Test func everyRejectedStreamLineIsKept() throws {
        let root = try Fixtures.temporaryDirectory("pipe-rejections").path
        let feed = try PipeReader(path: root + "/feed")
        feed.rejectionLog = RejectionLog(path: root + "/rejected/feed.rejections")
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let stdin = try SourceStandardInput(descriptor: fds[0])
        close(fds[0])
        stdin.rejectionLog = RejectionLog(path: root + "/rejected/stdin.rejections")
        try FileSystem.makeDirectory(root + "/rejected")
        let repo = try Repository(path: root + "/repo", encoder: HashingFactEncoder())
        let committer = TimeStepCommitter(sources: FactSources(pipes: [feed], standardInput: stdin), repository: repo,
                                          policy: TimeStepPolicy(maximumOperations: 1000, collectMilliseconds: 200))

        // 50 malformed lines (more than the worker logs per step), a retraction the
        // repository refuses, and one good fact.
        var text = (1...50).map { "{\"statement\": \"bad \($0)\"\n" }.joined()
        text += "{\"op\": \"retract\", \"id\": \"ghost\"}\nA good statement\n"
        let writer = try FileDescriptor.open(root + "/feed", O_WRONLY | O_NONBLOCK)
        try writer.writeAll(Array(text.utf8))
        let stdinWriter = FileDescriptor(adopting: fds[1], path: "stdin-writer")
        try stdinWriter.writeAll(Array("{broken from stdin\n".utf8))
        let all = try committer.steps(until: { $0.rejections.count >= 52 })
        #expect(all.counts.stored == 1)
        #expect(all.rejections.count == 52)
        #expect(Set(all.rejectionFiles) == [root + "/rejected/feed.rejections", root + "/rejected/stdin.rejections"])

        let kept = String(decoding: try FileSystem.readFile(root + "/rejected/feed.rejections"), as: UTF8.self)
        let lines = kept.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == 102)
        for n in 1...50 {
            #expect(lines[2 * (n - 1)].hasPrefix(root + "/feed:\(n): malformed JSON"))
            #expect(lines[2 * (n - 1) + 1] == "\t{\"statement\": \"bad \(n)\"")
        }
        #expect(lines[100] == "\(root)/feed:51: refused: no live fact ghost to retract")
        #expect(lines[101] == "\t{\"op\": \"retract\", \"id\": \"ghost\"}")
        let fromStdin = String(decoding: try FileSystem.readFile(root + "/rejected/stdin.rejections"), as: UTF8.self)
        #expect(fromStdin.hasPrefix("<stdin>:1: malformed JSON"))
        #expect(fromStdin.hasSuffix("\n\t{broken from stdin\n"))
        try writer.close()
        try stdinWriter.close()
    }

    @Test func theLogRotatesAtItsCapKeepingTheNewestFiles() throws {
        let root = try Fixtures.temporaryDirectory("rejection-rotate").path
        let log = RejectionLog(path: root + "/feed.rejections", maximumBytes: 120, keep: 2)
        for n in 1...7 {  // 55 bytes each: two per file
            try log.append([FactRejection(file: "feed", line: n, reason: .trailingContent, text: Array("line \(n)".utf8))])
        }
        func read(_ suffix: String) throws -> String {
            String(decoding: try FileSystem.readFile(root + "/feed.rejections" + suffix), as: UTF8.self)
        }
        #expect(try FileSystem.list(root) == ["feed.rejections", "feed.rejections.1", "feed.rejections.2"])
        #expect(try read("") == "feed:7: content after the top-level JSON value\n\tline 7\n")
        #expect(try read(".1").hasPrefix("feed:5: "))
        #expect(try read(".2").hasPrefix("feed:3: "))
        try log.close()
    }

    @Test func rejectionLogNamesFitAndDoNotCollide() {
        #expect(RejectionLog.fileName(forSource: "/var/lib/recipe/feed.pipe") == "feed.pipe.rejections")
        let a = RejectionLog.fileName(forSource: "/a/feed", among: ["/a/feed", "/b/feed"])
        let b = RejectionLog.fileName(forSource: "/b/feed", among: ["/a/feed", "/b/feed"])
        #expect(a != b && a.hasPrefix("feed-") && a.hasSuffix(".rejections"))
        let long = RejectionLog.fileName(forSource: "/p/" + String(repeating: "ü", count: 127))
        #expect(long.utf8.count <= FileSystem.nameMax - 4 && long.hasSuffix(".rejections") && !long.contains("\u{FFFD}"))
    }
}
