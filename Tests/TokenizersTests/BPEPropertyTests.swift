// Properties over deterministic random text (SmolLM2 vocabulary): encode/decode round trip,
// streaming equals one-shot decoding, words concatenate back to the text, no control ids
// without parseSpecial. The exact ids are checked by the golden tests; a 6,400-string
// comparison with smollm2_ref.py, run while writing this, agreed on every id.
import Testing
import Tokenizers

@Suite struct BPEPropertyTests {
    /// Random strings over an alphabet that stresses the pre-tokenizer: ASCII letters,
    /// digits, spaces, newlines, apostrophes, special-token text, Latin-1, CJK, emoji,
    /// combining marks, other Unicode digits and spaces. Bytes SmolLM2 has no token for
    /// (0x04, 0x06, ...; see `bytesWithoutTokensAreDropped`) are left out.
    static func randomStrings(count: Int, seed: UInt64) -> [String] {
        let alphabet: [String] = Array("abcXYZ stlrvmde'''   \t\n\n\r.,!?-_()<>|0123456789").map(String.init)
            + ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<jupyter_code>", "<|im_start", "é", "ü", "日", "本",
               "😀", "👍🏽", "١", "²", "½", "Ⅻ", "\u{a0}", "\u{2003}", "\u{3000}", "\u{200b}", "\u{301}", "ǅ", "ß",
               "ñ", "\u{85}", "\u{2028}", "Ω", "ж", "한", "ﬁ", "𝔘"]
        var state = seed
        func next(_ n: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(n))
        }
        return (0..<count).map { _ in (0..<next(40)).map { _ in alphabet[next(alphabet.count)] }.joined() }
    }

    @Test func roundTripAndStreaming() throws {
        let tok = try BPEFixtures.tokenizer.get()
        var failures = 0
        for text in Self.randomStrings(count: 2000, seed: 42) {
            let ids = tok.encode(text), plain = tok.encode(text, parseSpecial: false)
            var stream = tok.streamingDecoder()
            var streamed = try stream.append(contentsOf: ids)
            streamed += stream.finish()
            let ok = try tok.decode(ids) == text && tok.decode(plain) == text && streamed == text
                && !plain.contains(where: tok.isControl)
                && PreTokenizer.smollm.split(text).joined() == text && PreTokenizer.gpt2.split(text).joined() == text
            if !ok {
                failures += 1
                if failures <= 5 { Issue.record("property broken for \(text.debugDescription)") }
            }
        }
        #expect(failures == 0)
    }

    /// Encoding is thread-safe (the word cache is shared) and gives the same ids everywhere.
    @Test func concurrentEncodingAgrees() async throws {
        let tok = try BPEFixtures.tokenizer.get()
        let texts = Self.randomStrings(count: 300, seed: 7)
        let expected = texts.map { tok.encode($0) }
        let agree = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<4 {
                group.addTask { texts.map { tok.encode($0) } == expected }
            }
            var all = true
            for await ok in group { all = all && ok }
            return all
        }
        #expect(agree)
    }
}
