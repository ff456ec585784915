// WordPiece parity with ../shared/goldens/minilm.json (HF tokenizers on the shipped
// tokenizer.json, truncation 256, no padding) and malformed vocab.txt files.
import Foundation
import Testing
import TestSupport
import Tokenizers

/// The parts of minilm.json the tokenizer tests read.
struct MiniLMTokenizerGolden: Decodable {
    struct Case: Decodable, CustomTestStringConvertible {
        let text: String
        let ids: [Int]
        let tokens: [String]
        var testDescription: String { String(text.debugDescription.prefix(40)) }
    }
    struct Sentence: Decodable, CustomTestStringConvertible {
        let name: String
        let text: String
        let token_ids: [Int]
        let n_tokens_untruncated: Int
        var testDescription: String { name }
    }
    let tokenizer_cases: [Case]
    let sentences: [Sentence]

    static func load() throws -> MiniLMTokenizerGolden {
        try Fixtures.golden("minilm.json", as: MiniLMTokenizerGolden.self)
    }
}

/// Loaded once: the vocab file and the golden file.
let sharedWordPiece = Result { try WordPieceTokenizer(vocabulary: Fixtures.miniLM.appendingPathComponent("vocab.txt")) }
let wordPieceGolden = Result { try MiniLMTokenizerGolden.load() }

func firstDifference(_ a: [Int], _ b: [Int]) -> String {
    if a == b { return "equal" }
    let i = zip(a, b).prefix { $0 == $1 }.count
    return "first difference at \(i): got \(i < a.count ? String(a[i]) : "end"), expected \(i < b.count ? String(b[i]) : "end") (lengths \(a.count) vs \(b.count))"
}

@Suite struct WordPieceTokenizerTests {
    static let cases: [MiniLMTokenizerGolden.Case] = (try? wordPieceGolden.get().tokenizer_cases) ?? []
    static let sentences: [MiniLMTokenizerGolden.Sentence] = (try? wordPieceGolden.get().sentences) ?? []

    @Test func goldenFileHasAllCases() throws {
        let g = try wordPieceGolden.get()
        #expect(g.tokenizer_cases.count == 17)
        #expect(g.sentences.count == 11)
    }

    @Test(arguments: cases)
    func tokenizerCase(_ c: MiniLMTokenizerGolden.Case) throws {
        let tok = try sharedWordPiece.get()
        let ids = tok.encode(c.text)
        #expect(ids == c.ids, "\(firstDifference(ids, c.ids))")
        #expect(tok.tokens(c.text) == c.tokens)
    }

    @Test(arguments: sentences)
    func sentenceTokenIDs(_ s: MiniLMTokenizerGolden.Sentence) throws {
        let tok = try sharedWordPiece.get()
        let ids = tok.encode(s.text)
        #expect(ids == s.token_ids, "\(firstDifference(ids, s.token_ids))")
        #expect(tok.encodeWithoutSpecials(s.text).count + 2 == s.n_tokens_untruncated)
    }

    @Test func quirks() throws {
        let tok = try sharedWordPiece.get()
        // Literal special tokens are matched exactly, without normalization.
        #expect(tok.tokens("a [SEP] b [MASK][cls]") == ["[CLS]", "a", "[SEP]", "b", "[MASK]", "[", "cl", "##s", "]", "[SEP]"])
        // Control characters are deleted, not turned into spaces; zero-width too.
        #expect(tok.tokens("control\u{7}char") == tok.tokens("controlchar"))
        #expect(tok.tokens("zero\u{200B}width") == tok.tokens("zerowidth"))
        // Hangul decomposes to jamo.
        #expect(tok.tokens("한") == ["[CLS]", "ᄒ", "##ᅡ", "##ᆫ", "[SEP]"])
        // Emoji without a space between: one [UNK].
        #expect(tok.tokens("😀👍") == ["[CLS]", "[UNK]", "[SEP]"])
        // Truncation keeps [CLS] and [SEP].
        let long = String(repeating: "word ", count: 300)
        #expect(tok.encode(long).count == 256)
        #expect(tok.encode(long, maxLength: 5) == [tok.clsID, 2773, 2773, 2773, tok.sepID])
        #expect(tok.encode(long, maxLength: 0) == [tok.clsID, tok.sepID])
    }

    @Test func longTextsStopEarlyWithTheSameResult() throws {
        let tok = try sharedWordPiece.get()
        let g = try wordPieceGolden.get()
        // Every golden text, repeated, with specials, accents, CJK and newlines.
        let text = String(repeating: g.sentences.map(\.text).joined(separator: " [SEP] Ångström\n中文 "), count: 40)
        let full = tok.encodeWithoutSpecials(text)
        #expect(full.count > 5000)
        let early = tok.encodeWithoutSpecials(text, atLeast: 300)
        #expect(early.count >= 300 && Array(full.prefix(early.count)) == early)
        #expect(tok.encode(text) == [tok.clsID] + full.prefix(254) + [tok.sepID])
        // Chunked normalization equals normalizing the whole text at once.
        var whole: [Int] = []
        for w in BasicTokenizer().words(Substring(text.replacingOccurrences(of: "[SEP]", with: " ")).unicodeScalars) {
            tok.wordPiece(w, into: &whole)
        }
        let noSpecials = tok.encodeWithoutSpecials(text.replacingOccurrences(of: "[SEP]", with: " "))
        #expect(noSpecials == whole)
    }

    @Test func decode() throws {
        let tok = try sharedWordPiece.get()
        #expect(try tok.decode(tok.encode("Hello, World! I'm unbelievably happy.")) == "hello, world! i'm unbelievably happy.")
        #expect(try tok.decode(tok.encode("hi"), skipSpecialTokens: false) == "[CLS] hi [SEP]")
        #expect(throws: TokenizerError.self) { try tok.decode([1, 999_999]) }
    }
}

@Suite struct WordPieceVocabularyErrorTests {
    func load(_ text: String) throws -> WordPieceTokenizer {
        try WordPieceTokenizer(vocabularyData: Data(text.utf8), file: "bad/vocab.txt")
    }

    let specials = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n"

    @Test func minimalVocabularyWorks() throws {
        let tok = try load(specials + "hello\n##s\n")
        #expect(tok.encode("Hellos") == [2, 5, 6, 3])
        #expect(tok.encode("Hello!") == [2, 5, 1, 3])
    }

    @Test func duplicateToken() {
        #expect(throws: TokenizerError.vocabulary(file: "bad/vocab.txt", entry: 7, reason: "duplicate token 'a' (first on line 6)")) {
            try load(specials + "a\na\n")
        }
    }

    @Test func emptyLine() {
        #expect(throws: TokenizerError.vocabulary(file: "bad/vocab.txt", entry: 6, reason: "empty token")) {
            try load(specials + "\na\n")
        }
    }

    @Test(arguments: ["[PAD]", "[UNK]", "[CLS]", "[SEP]"])
    func missingSpecial(_ name: String) {
        let text = specials.replacingOccurrences(of: name + "\n", with: "")
        #expect(throws: TokenizerError.vocabulary(file: "bad/vocab.txt", entry: nil, reason: "special token \(name) is missing")) {
            try load(text)
        }
    }

    @Test func emptyFileAndBadUTF8() {
        #expect(throws: TokenizerError.self) { try load("") }
        #expect(throws: TokenizerError.vocabulary(file: "bad/vocab.txt", entry: nil, reason: "not valid UTF-8")) {
            try WordPieceTokenizer(vocabularyData: Data([0x5B, 0xFF, 0x0A]), file: "bad/vocab.txt")
        }
    }

    @Test func missingFileNamesPath() {
        let url = URL(fileURLWithPath: "/nonexistent/vocab.txt")
        do {
            _ = try WordPieceTokenizer(vocabulary: url)
            Issue.record("loading a missing file succeeded")
        } catch {
            #expect("\(error)".contains("/nonexistent/vocab.txt"))
        }
    }
}
