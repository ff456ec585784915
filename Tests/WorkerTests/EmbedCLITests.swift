// `recipe embed --lines`: one embedding per line of standard input, for one model load.
import Foundation
import TestSupport
import Testing

@Suite struct EmbedCLITests {
    @Test func embedsEveryLineOfStandardInputInOrder() throws {
        let binary = try #require(IngestCrashTests.recipeBinary(), "no recipe binary: swift build -c release --product recipe")
        let dir = try Fixtures.temporaryDirectory("embed-lines").path
        // An empty line is a text too, and a CRLF line ending is not part of the text.
        try Data("Toko Yasuda, the piano\n\nWhat does Toko Yasuda play?\r\n".utf8).write(to: URL(fileURLWithPath: dir + "/in.txt"))
        func vectors(_ text: String) throws -> [[Double]] {
            try text.split(separator: "\n").map { line in
                let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                return try #require(object["embedding"] as? [Double])
            }
        }
        var (code, text) = try IngestCrashTests.shell("'\(binary)' embed --lines < '\(dir)/in.txt' 2>/dev/null", binary: binary)
        #expect(code == 0, "\(code): \(text)")
        let lines = try vectors(text)
        #expect(lines.count == 3 && lines.allSatisfy { $0.count == 384 })
        for v in lines { #expect(abs(v.reduce(0) { $0 + $1 * $1 } - 1) < 1e-4) }
        // The same vectors as one text at a time (batched with padding-free sequences).
        for (i, t) in ["Toko Yasuda, the piano", "What does Toko Yasuda play?"].enumerated() {
            (code, text) = try IngestCrashTests.shell("'\(binary)' embed --json '\(t)' 2>/dev/null", binary: binary)
            let single = try #require(try vectors(text).first)
            let batched = lines[i == 0 ? 0 : 2]
            #expect(zip(single, batched).allSatisfy { abs($0 - $1) < 1e-5 }, "\(t)")
        }
        (code, text) = try IngestCrashTests.shell("'\(binary)' embed --lines extra < /dev/null", binary: binary)
        #expect(code == 2 && text.contains("--lines reads standard input"), "\(code): \(text)")
    }
}
