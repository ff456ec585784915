// Byte-level BPE parity with ../shared/goldens/smollm2.json (llama.cpp, HF tokenizers and
// smollm2_ref.py agree on every case), loading the vocabulary from the real GGUF.
import Testing
import TestSupport
import Tokenizers

@Suite struct BPEGoldenTests {
    @Test func goldenFileIsComplete() throws {
        let g = try BPEFixtures.golden.get()
        #expect(g.tokenizer_cases.count == 34)
        #expect(g.prompts.count == 6)
    }

    @Test func ggufMetadata() throws {
        let tok = try BPEFixtures.tokenizer.get()
        #expect(tok.vocabularySize == 49152)
        #expect(tok.mergeCount == 48900)
        #expect(tok.bos == 1)
        #expect(tok.eos == 2)
        #expect(tok.padding == 2)
        #expect(tok.addsBOS == false)
        #expect(tok.preTokenizer == .smollm)
        #expect(tok.id(of: "<|im_end|>") == 2)
        #expect(tok.id(of: "Ġthe") != nil)
        #expect(tok.id(of: "no such token") == nil)
        #expect(tok.token(1) == "<|im_start|>" && tok.token(216) == "Ġ" && tok.token(49152) == nil)
        #expect((0...16).allSatisfy { tok.isControl($0) })
        #expect(!tok.isControl(17) && !tok.isControl(-1) && !tok.isControl(49152))
        #expect(tok.tokenType(17) == .normal)
    }

    @Test(arguments: BPEFixtures.cases)
    func tokenizerCase(_ c: SmolLM2TokenizerGolden.Case) throws {
        let tok = try BPEFixtures.tokenizer.get()
        let ids = tok.encode(c.text)
        #expect(ids == c.ids, "\(BPEFixtures.difference(ids, c.ids))")
        let plain = tok.encode(c.text, parseSpecial: false)
        #expect(plain == c.ids_parse_special_false, "\(BPEFixtures.difference(plain, c.ids_parse_special_false))")
        let pieces = try c.ids.map { try BPEFixtures.hex(tok.pieceBytes($0)) }
        #expect(pieces == c.pieces_hex)
        #expect(try tok.decode(c.ids) == c.decode)
        #expect(try tok.decode(c.ids, skipSpecial: true) == c.decode_skip_special)
        // Round trips, with and without special-token parsing.
        #expect(try tok.decode(ids) == c.text)
        #expect(try tok.decode(plain) == c.text)
    }

    @Test(arguments: BPEFixtures.prompts)
    func promptTokenIDs(_ p: SmolLM2TokenizerGolden.Prompt) throws {
        let tok = try BPEFixtures.tokenizer.get()
        let ids = tok.encode(p.text)
        #expect(ids == p.token_ids, "\(BPEFixtures.difference(ids, p.token_ids))")
        #expect(try tok.decode(ids) == p.text)
    }

    /// Streaming the golden ids one by one gives the same text as decoding them at once, and
    /// never emits U+FFFD for a character split across tokens.
    @Test(arguments: BPEFixtures.cases)
    func streamingDecode(_ c: SmolLM2TokenizerGolden.Case) throws {
        let tok = try BPEFixtures.tokenizer.get()
        for skip in [false, true] {
            var decoder = tok.streamingDecoder(skipSpecial: skip)
            var text = ""
            for id in c.ids {
                let chunk = try decoder.append(id)
                #expect(!chunk.unicodeScalars.contains("\u{FFFD}"), "chunk \(chunk.debugDescription)")
                text += chunk
            }
            #expect(!decoder.hasPendingBytes)
            text += decoder.finish()
            #expect(text == (skip ? c.decode_skip_special : c.decode))
        }
    }

    @Test func streamingHoldsBackPartialCharacters() throws {
        let tok = try BPEFixtures.tokenizer.get()
        // "日本" is [23274 (e6 97), 115 (a5), 40993 (e6 9c ac)].
        var decoder = tok.streamingDecoder()
        #expect(try decoder.append(23274) == "")
        #expect(decoder.hasPendingBytes)
        #expect(try decoder.append(115) == "日")
        #expect(try decoder.append(40993) == "本")
        // A dangling lead byte is flushed as U+FFFD by finish(), and a lead byte followed
        // by ASCII is emitted at once.
        #expect(try decoder.append(23274) == "")
        #expect(decoder.finish() == "\u{FFFD}")
        #expect(try decoder.append(23274) == "")
        #expect(try decoder.append(tok.id(of: "a")!) == "\u{FFFD}a")
    }

    @Test func decodeReplacesInvalidUTF8() throws {
        let tok = try BPEFixtures.tokenizer.get()
        #expect(try tok.decode([23274]) == "\u{FFFD}")
        #expect(try tok.decodeBytes([23274]) == [0xE6, 0x97])
    }

    /// Quirks listed in ../shared/goldens/README.md.
    @Test func readmeQuirks() throws {
        let tok = try BPEFixtures.tokenizer.get()
        #expect(tok.encode("\n\n") == [1116])
        #expect(tok.encode("\r\n windows") == [2738, 8393])
        #expect(tok.encode(" <|im_start|> spaced") == [216, 1, 23861])
        let a123 = try tok.encode("a 123").map { try tok.decode([$0]) }
        #expect(a123 == ["a", " ", "1", "2", "3"])
        let dont = try tok.encode("DON'T").map { try tok.decode([$0]) }
        #expect(dont.suffix(2) == ["'", "T"])
    }

    @Test func bytesWithoutTokensAreDropped() throws {
        // SmolLM2 has no token for byte 0x04 (it never occurs in its data); llama.cpp drops
        // such bytes, and so do we, keeping the rest.
        let tok = try BPEFixtures.tokenizer.get()
        #expect(tok.encode("a\u{04}b") == tok.encode("a") + tok.encode("b"))
    }

    /// Words longer than 48 bytes take the heap-based merge loop; ids from smollm2_ref.py.
    @Test(arguments: [
        (String(repeating: "abracadabra", count: 12), Array(repeating: [369, 8098, 344, 369, 317], count: 12).flatMap { $0 }),
        (String(repeating: "Pneumonoultramicroscopicsilicovolcanoconiosis", count: 2),
         Array(repeating: [64, 10304, 258, 12715, 814, 1936, 1513, 371, 747, 37502, 21369, 4055, 406, 16842, 2469], count: 2).flatMap { $0 }),
        (String(repeating: "é", count: 60), Array(repeating: 2756, count: 60)),
        (String(repeating: "\n", count: 70), Array(repeating: 22342, count: 17) + [1116]),
        (String(repeating: " ", count: 99) + "x", [40686, 12427, 256, 1792]),
        (String(repeating: "ab", count: 40) + "c", Array(repeating: 369, count: 39) + [25276]),
        (String(repeating: "-=", count: 40), [29] + Array(repeating: 15196, count: 39) + [45]),
    ])
    func longWordsMatchReference(text: String, expected: [Int]) throws {
        let tok = try BPEFixtures.tokenizer.get()
        let ids = tok.encode(text)
        #expect(ids == expected, "\(BPEFixtures.difference(ids, expected))")
    }

    @Test func longWordsAreEncodedAndRoundTrip() throws {
        let tok = try BPEFixtures.tokenizer.get()
        let text = String(repeating: "abracadabra", count: 300) + " " + String(repeating: "é", count: 500)
        let ids = tok.encode(text)
        #expect(try tok.decode(ids) == text)
        #expect(ids.count < text.utf8.count / 2)
    }

    /// The benchmark's own check (it times nothing here: tests never assert on time).
    @Test func benchmarkChecksAndCounts() throws {
        let tok = try BPEFixtures.tokenizer.get()
        let text = BPEBenchmark.sampleText(bytes: 20_000)
        #expect(text == BPEBenchmark.sampleText(bytes: 20_000))
        #expect(text.utf8.count >= 20_000)
        let r = try BPEBenchmark.run(tok, text: text, runs: 1, warmup: 0)
        #expect(r.bytes == text.utf8.count && r.tokens == tok.encode(text).count)
    }
}
