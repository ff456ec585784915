// Every rule of the fact formats (DESIGN.md section 4), one test each, and a fixed-seed
// fuzz run over random bytes and mutated files.
import Foundation
import Storage
import Testing
import TestSupport
import Worker

private func parse(_ text: String, _ format: FactFormat, limit: Int = 64 * 1024) -> ParseResult {
    FactParser(maximumLineBytes: limit).parse(Array(text.utf8), format: format, file: "in.x")
}

private func statement(_ op: FactOperation) -> String? {
    if case .add(let s, _, _, _, _, _) = op { return s }
    return nil
}

@Suite struct FactParserTests {
    @Test func promptTargetFactComposesTheStatement() throws {
        let r = parse(#"{"prompt": "The mother tongue of Danielle Darrieux is", "target": "English", "subject": "Danielle Darrieux", "id": "cf-1", "source": "counterfact"}"#, .jsonLines)
        #expect(r.rejections.isEmpty)
        let f = try #require(r.facts.first)
        #expect(f.line == 1)
        #expect(f.operation == .add(statement: "The mother tongue of Danielle Darrieux is English",
                                    prompt: "The mother tongue of Danielle Darrieux is", target: "English",
                                    subject: "Danielle Darrieux", id: "cf-1",
                                    source: FactSource(kind: .file, name: "in.x [counterfact]", line: 1)))
    }

    @Test func noExtraSpaceWhenPromptEndsOrTargetStartsWithOne() {
        #expect(FactParser.statement(prompt: "A is", target: "B") == "A is B")
        #expect(FactParser.statement(prompt: "A is ", target: "B") == "A is B")
        #expect(FactParser.statement(prompt: "A is", target: " B") == "A is B")
        let r = parse(#"{"prompt": "A is ", "target": "B"}"#, .jsonLines)
        #expect(statement(r.facts[0].operation) == "A is B")
    }

    @Test func statementFormAndNullFields() {
        let r = parse(#"{"statement": "Paris is in France", "id": null, "subject": "Paris"}"#, .jsonLines)
        #expect(r.facts.map(\.operation) == [.add(statement: "Paris is in France", subject: "Paris",
                                                  source: FactSource(kind: .file, name: "in.x", line: 1))])
    }

    @Test func retractions() {
        let r = parse("""
        {"op": "retract", "id": "cf-1"}
        {"op": "retract", "statement": "Paris is in France"}
        {"op": "retract"}
        {"op": "retract", "id": "  "}
        {"op": "explode", "id": "x"}
        {"op": "add", "statement": "x is y"}
        """, .jsonLines)
        #expect(r.facts.map(\.line) == [1, 2, 6])
        #expect(r.facts[0].operation == .retractID("cf-1", source: FactSource(kind: .file, name: "in.x", line: 1)))
        #expect(r.facts[1].operation == .retractStatement("Paris is in France", source: FactSource(kind: .file, name: "in.x", line: 2)))
        #expect(r.rejections.map(\.line) == [3, 4, 5])
        #expect(r.rejections.map(\.reason) == [.missingField("id"), .emptyField("id"), .unknownOperation("explode")])
    }

    @Test func badLinesAreRejectedWithLineAndReasonAndTheRestGoesOn() {
        let text = """
        {"prompt": "A is", "target": "B"}
        {"prompt": "A is", "target": "B"
        {"prompt": "C is"}
        {"target": "D"}
        {"id": "lonely"}
        {"prompt": "E is", "target": 5}
        {"prompt": "F is", "target": "   "}
        {"prompt": "", "target": "G"}
        ["not", "an", "object"]
        {"statement": "  "}

        {"prompt": "H is", "target": "I"}
        """
        let r = parse(text, .jsonLines)
        #expect(r.facts.map(\.line) == [1, 12])
        #expect(r.rejections.map(\.line) == [2, 3, 4, 5, 6, 7, 8, 9, 10])
        #expect(r.rejections[1].reason == .missingField("target"))
        #expect(r.rejections[2].reason == .missingField("prompt"))
        #expect(r.rejections[3].reason == .missingField("statement"))
        #expect(r.rejections[4].reason == .wrongType(field: "target", expected: "a string"))
        #expect(r.rejections[5].reason == .emptyField("target"))
        #expect(r.rejections[6].reason == .emptyField("prompt"))
        #expect(r.rejections[7].reason == .notAnObject(found: "an array"))
        #expect(r.rejections[8].reason == .emptyField("statement"))
        if case .malformedJSON = r.rejections[0].reason {} else { Issue.record("line 2: \(r.rejections[0].reason)") }
        #expect(r.rejections[0].description.hasPrefix("in.x:2: malformed JSON"))
    }

    @Test func invalidUTF8AndOverlongLines() {
        var bytes = Array(#"{"statement": "ok one"}"#.utf8) + [0x0A]
        bytes += Array(#"{"statement": "bad "#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8) + [0x0A]
        bytes += Array(String(repeating: "x", count: 100).utf8) + [0x0A]
        bytes += Array("short statement".utf8)
        let r = FactParser(maximumLineBytes: 50).parse(bytes, format: .mixedLines, file: "p")
        #expect(r.facts.map(\.line) == [1, 4])
        #expect(r.rejections == [
            FactRejection(file: "p", line: 2, reason: .invalidUTF8(offset: 19)),
            FactRejection(file: "p", line: 3, reason: .lineTooLong(bytes: 100, limit: 50)),
        ])
    }

    @Test func textFilesCRLFAndBOM() {
        let bytes: [UInt8] = [0xEF, 0xBB, 0xBF] + Array("Paris is in France\r\n\r\n  Rome is in Italy  \n{\"not\": \"json here\"}\n".utf8)
        let r = FactParser().parse(bytes, format: .text, file: "f.txt")
        #expect(r.rejections.isEmpty)
        #expect(r.facts.map(\.line) == [1, 3, 4])
        #expect(r.facts.compactMap { statement($0.operation) } == ["Paris is in France", "Rome is in Italy", #"{"not": "json here"}"#])
    }

    @Test func jsonFileWithOneObject() {
        let r = parse("\n\n  {\"prompt\": \"A is\",\n \"target\": \"B\"}\n", .json)
        #expect(r.rejections.isEmpty)
        #expect(r.facts.map(\.line) == [3])
    }

    @Test func jsonArrayElementsKeepTheirLines() {
        let text = """
        [
          {"prompt": "A is", "target": "B"},
          {"prompt": "C is",
           "target": "D, with [brackets] and \\"quotes\\" and {braces}"},
          {"prompt": "E is", "target": },
          "a string",
          {"op": "retract", "id": "x"}
        ]
        """
        let r = parse(text, .json)
        #expect(r.facts.map(\.line) == [2, 3, 7])
        #expect(statement(r.facts[1].operation) == #"C is D, with [brackets] and "quotes" and {braces}"#)
        #expect(r.rejections.map(\.line) == [5, 6])
        #expect(r.rejections[1].reason == .notAnObject(found: "a string"))
    }

    @Test func jsonStructuralErrors() {
        #expect(parse("[{\"statement\": \"a\"}", .json).rejections.map(\.reason) == [.malformedJSON("unterminated array")])
        #expect(parse("[{\"statement\": \"a\"} {\"statement\": \"b\"}]", .json).rejections.map(\.reason)
                == [.malformedJSON("expected , or ] between elements")])
        let trailing = parse("{\"statement\": \"a\"}\n{\"statement\": \"b\"}", .json)
        #expect(trailing.rejections.map(\.reason) == [.trailingContent])
        #expect(trailing.facts.count == 1)
        #expect(parse("[]", .json) == ParseResult())
        #expect(parse("   \n", .json) == ParseResult())
        #expect(parse("[1, 2]", .json).rejections.count == 2)
        #expect(parse("{\"statement\": \"a\"", .json).rejections.map(\.reason) == [.malformedJSON("unterminated value")])
    }

    @Test func formatsByExtension() {
        #expect(FactFormat(path: "a/b.jsonl") == .jsonLines)
        #expect(FactFormat(path: "B.JSON") == .json)
        #expect(FactFormat(path: "x.txt") == .text)
        #expect(FactFormat(path: "x.csv") == nil)
    }

    @Test func fuzzNeverCrashesAndAccountsForEveryLine() {
        var rng = SeededRandom(seed: 0x5EED)
        let seeds = [
            #"{"prompt": "The capital of France is", "target": "Paris", "subject": "France", "id": "a"}"#,
            #"{"statement": "Rome is in Italy", "source": "feed"}"#,
            #"{"op": "retract", "id": "a"}"#,
            "[{\"prompt\": \"A is\", \"target\": \"B\"},\n{\"statement\": \"C\"}]",
            "Plain statement line\nAnother one",
        ].map { Array($0.utf8) }
        let specials: [UInt8] = Array("{}[]\",:\\\n\r \u{7F}".utf8) + [0x00, 0xC3, 0xE2, 0xF0, 0xFF, 0x80]
        for round in 0..<3000 {
            var bytes: [UInt8]
            if round % 4 == 0 {
                bytes = (0..<Int(rng.next() % 200)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            } else {
                bytes = seeds[Int(rng.next() % UInt64(seeds.count))]
                for _ in 0..<Int(1 + rng.next() % 6) {
                    let at = bytes.isEmpty ? 0 : Int(rng.next() % UInt64(bytes.count))
                    switch rng.next() % 4 {
                    case 0: if !bytes.isEmpty { bytes[at] = specials[Int(rng.next() % UInt64(specials.count))] }
                    case 1: bytes.insert(specials[Int(rng.next() % UInt64(specials.count))], at: at)
                    case 2: if !bytes.isEmpty { bytes.remove(at: at) }
                    default: bytes = Array(bytes.prefix(at)) + bytes  // duplicate a prefix
                    }
                }
            }
            let lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).count
            for format in [FactFormat.jsonLines, .json, .text, .mixedLines] {
                let r = FactParser(maximumLineBytes: 120).parse(bytes, format: format, file: "fuzz")
                let used = r.facts.map(\.line) + r.rejections.map(\.line)
                #expect(used.allSatisfy { $0 >= 1 && $0 <= max(1, lines) }, "round \(round) \(format)")
                if format != .json {
                    #expect(Set(used).count == used.count, "a line reported twice in round \(round)")
                }
            }
        }
    }
}

