// The pre-tokenizer scanner against the regexes it replaces. Expected splits come from
// Python's `regex` module running the reference's DIGIT_RE / GPT2_RE (smollm2_ref.py);
// a 6,400-string random comparison against the full reference tokenizer also agreed
// (not committed: it needs Python).
import Testing
import Tokenizers

struct BPEPreTokenizerCase: Sendable, CustomTestStringConvertible {
    let text: String
    let smollm: [String]
    let gpt2: [String]
    var testDescription: String { text.debugDescription }
}

@Suite struct BPEPreTokenizerTests {
    static let cases: [BPEPreTokenizerCase] = [
        .init(text: "I'm sure they've said we'll go, he'd've",
              smollm: ["I", "'m", " sure", " they", "'ve", " said", " we", "'ll", " go", ",", " he", "'d", "'ve"],
              gpt2: ["I", "'m", " sure", " they", "'ve", " said", " we", "'ll", " go", ",", " he", "'d", "'ve"]),
        .init(text: "DON'T 'S 'll 'LL",
              smollm: ["DON", "'", "T", " '", "S", " '", "ll", " '", "LL"],
              gpt2: ["DON", "'", "T", " '", "S", " '", "ll", " '", "LL"]),
        .init(text: "?'s x'", smollm: ["?'", "s", " x", "'"], gpt2: ["?'", "s", " x", "'"]),
        .init(text: "a 123 b12c",
              smollm: ["a", " ", "1", "2", "3", " b", "1", "2", "c"],
              gpt2: ["a", " 123", " b", "12", "c"]),
        .init(text: "  two\n\n\nthree \t four",
              smollm: [" ", " two", "\n\n", "\n", "three", " \t", " four"],
              gpt2: [" ", " two", "\n\n", "\n", "three", " \t", " four"]),
        .init(text: "end  ", smollm: ["end", "  "], gpt2: ["end", "  "]),
        .init(text: "\u{a0}nbsp\u{3000}ideo",
              smollm: ["\u{a0}", "nbsp", "\u{3000}", "ideo"], gpt2: ["\u{a0}", "nbsp", "\u{3000}", "ideo"]),
        .init(text: "x\u{2028}y", smollm: ["x", "\u{2028}", "y"], gpt2: ["x", "\u{2028}", "y"]),
        .init(text: "caf\u{e9} e\u{301}", smollm: ["caf\u{e9}", " e", "\u{301}"], gpt2: ["caf\u{e9}", " e", "\u{301}"]),
        .init(text: "\u{216b}\u{bd}\u{b2}\u{661}\u{662}",
              smollm: ["\u{216b}", "\u{bd}", "\u{b2}", "\u{661}", "\u{662}"],
              gpt2: ["\u{216b}\u{bd}\u{b2}\u{661}\u{662}"]),
        .init(text: "$1,000.50!",
              smollm: ["$", "1", ",", "0", "0", "0", ".", "5", "0", "!"],
              gpt2: ["$", "1", ",", "000", ".", "50", "!"]),
        .init(text: " 'quoted' ", smollm: [" '", "quoted", "'", " "], gpt2: [" '", "quoted", "'", " "]),
        .init(text: "tab\t\tx", smollm: ["tab", "\t", "\t", "x"], gpt2: ["tab", "\t", "\t", "x"]),
        .init(text: "\r\n windows", smollm: ["\r\n", " windows"], gpt2: ["\r\n", " windows"]),
        .init(text: "  ", smollm: ["  "], gpt2: ["  "]),
        .init(text: "", smollm: [], gpt2: []),
        .init(text: "\u{e9}moji\u{1F600}\u{1F600} ok",
              smollm: ["\u{e9}moji", "\u{1F600}\u{1F600}", " ok"], gpt2: ["\u{e9}moji", "\u{1F600}\u{1F600}", " ok"]),
    ]

    @Test(arguments: cases)
    func splitsLikeTheRegex(_ c: BPEPreTokenizerCase) {
        // Compare scalar by scalar: String equality would hide a difference in normalization.
        let smollm = PreTokenizer.smollm.split(c.text).map { Array($0.unicodeScalars) }
        let gpt2 = PreTokenizer.gpt2.split(c.text).map { Array($0.unicodeScalars) }
        #expect(smollm == c.smollm.map { Array($0.unicodeScalars) })
        #expect(gpt2 == c.gpt2.map { Array($0.unicodeScalars) })
    }

    @Test func names() {
        #expect(PreTokenizer.named("smollm") == .smollm)
        #expect(PreTokenizer.named("gpt-2") == .gpt2)
        #expect(PreTokenizer.named("llama3") == nil && PreTokenizer.named("default") == nil)
        #expect(PreTokenizer.named("starcoder") == .smollm && PreTokenizer.named("olmo") == .gpt2)
    }

    /// `\s` is Unicode White_Space, as in Python's `regex` and llama.cpp (not str.isspace,
    /// which also counts U+001C...U+001F).
    @Test func whitespaceIsTheWhiteSpaceProperty() {
        let white: [UInt32] = [0x9, 0xA, 0xB, 0xC, 0xD, 0x20, 0x85, 0xA0, 0x1680] + Array(0x2000...0x200A)
            + [0x2028, 0x2029, 0x202F, 0x205F, 0x3000]
        for v in white {
            let s = String(Unicode.Scalar(v)!)
            // A whitespace scalar at the end of a segment joins the run before it.
            #expect(PreTokenizer.gpt2.split("a\t" + s) == ["a", "\t" + s], "U+\(String(v, radix: 16))")
        }
        for v: UInt32 in [0x1C, 0x1F, 0x200B, 0x180E, 0xFEFF] {
            let s = String(Unicode.Scalar(v)!)
            #expect(PreTokenizer.gpt2.split("a\t" + s) == ["a", "\t", s], "U+\(String(v, radix: 16))")
        }
    }
}
