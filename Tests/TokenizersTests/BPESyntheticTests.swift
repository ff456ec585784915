// Small hand-made tokenizers and in-memory GGUF files: merge order, special-token kinds,
// and malformed vocabularies, merges and ids (every failure is a `TokenizerError` that
// names the entry or key).
import Testing
import Tokenizers
import WeightFormats

/// A byte-level vocabulary of all 256 byte characters plus `extra` tokens.
func bpeByteVocabulary(_ extra: [String] = []) -> [String] {
    ByteLevel.scalars.map { String(Character($0)) } + extra
}

/// A metadata-only GGUF file built in memory with the weights branch's `GGUFWriter`.
struct BPEGGUFBuilder {
    var writer = GGUFWriter()

    mutating func string(_ key: String, _ value: String) { writer.set(key, value) }
    mutating func strings(_ key: String, _ values: [String]) { writer.set(key, values) }
    mutating func int32s(_ key: String, _ values: [Int32]) { writer.set(key, values) }
    mutating func uint32(_ key: String, _ value: UInt32) { writer.set(key, .uint32(value)) }
    mutating func bool(_ key: String, _ value: Bool) { writer.set(key, value) }

    func file(_ path: String = "test.gguf") throws -> GGUFFile {
        try GGUFFile(file: MappedFile(copying: writer.serialized(), path: path))
    }

    /// A valid gpt2 tokenizer: bytes, "ab", "abc"; merges "a b", "ab c".
    static func valid(model: String = "gpt2", pre: String? = "smollm") -> BPEGGUFBuilder {
        var b = BPEGGUFBuilder()
        b.string("tokenizer.ggml.model", model)
        if let pre { b.string("tokenizer.ggml.pre", pre) }
        let tokens = ["<|end|>"] + bpeByteVocabulary(["ab", "abc"])
        b.strings("tokenizer.ggml.tokens", tokens)
        b.strings("tokenizer.ggml.merges", ["a b", "ab c"])
        b.int32s("tokenizer.ggml.token_type", [3] + Array(repeating: 1, count: tokens.count - 1))
        b.uint32("tokenizer.ggml.eos_token_id", 0)
        b.bool("tokenizer.ggml.add_bos_token", false)
        return b
    }
}

@Suite struct BPESyntheticTests {
    @Test func smallTokenizerMergesByRank() throws {
        let tok = try BPETokenizer(tokens: bpeByteVocabulary(["ab", "abc", "bc"]),
                                   merges: ["a b", "ab c", "b c"], source: "test")
        let ab = 256, abc = 257, bc = 258
        #expect(tok.encode("abc") == [abc])
        // "a b" outranks "b c": "abbc" -> ab, bc.
        #expect(tok.encode("abbc") == [ab, bc])
        #expect(try tok.decode(tok.encode("abc abbc")) == "abc abbc")
        #expect(tok.encode("") == [])
    }

    @Test func controlAndUserDefinedTokens() throws {
        let vocab = bpeByteVocabulary(["<c>", "<tool>", "<tool>x"])
        var types = Array(repeating: 1, count: vocab.count)
        types[256] = 3; types[257] = 4; types[258] = 4
        let tok = try BPETokenizer(tokens: vocab, merges: [], tokenTypes: types, source: "t")
        let c = 256, tool = 257, toolx = 258
        // Longest match first; user-defined tokens are matched even without parseSpecial.
        #expect(tok.encode("<tool>x<tool><c>") == [toolx, tool, c])
        #expect(tok.encode("<tool>x<c>", parseSpecial: false) == [toolx] + tok.encode("<c>", parseSpecial: false))
        #expect(tok.encode("<c>", parseSpecial: false).count == 3)
        // skipSpecial drops control tokens only.
        #expect(try tok.decode([toolx, c, 65], skipSpecial: true) == "<tool>xA")
        #expect(try tok.decode([toolx, c, 65]) == "<tool>x<c>A")
        #expect(tok.isSpecial(tool) && !tok.isControl(tool) && tok.isControl(c))
    }

    @Test func addSpecialAddsWhatTheModelAsksFor() throws {
        let vocab = bpeByteVocabulary(["<s>", "</s>"])
        let tok = try BPETokenizer(tokens: vocab, merges: [], bos: 256, eos: 257, addsBOS: true, addsEOS: true, source: "t")
        let a = try #require(tok.id(of: "A"))
        #expect(tok.encode("A", addSpecial: true) == [256, a, 257])
        #expect(tok.encode("A") == [a])
        let plain = try BPETokenizer(tokens: vocab, merges: [], bos: 256, eos: 257, source: "t")
        #expect(plain.encode("A", addSpecial: true) == [a])
        #expect(throws: TokenizerError.metadata(file: "t", key: "tokenizer.ggml.bos_token_id",
                                                reason: "missing, but tokenizer.ggml.add_bos_token is true")) {
            try BPETokenizer(tokens: vocab, merges: [], addsBOS: true, source: "t")
        }
    }

    @Test(arguments: ["ab", "a b c", " a", "a ", "a  b", ""])
    func badMergeLine(_ line: String) {
        #expect(throws: TokenizerError.self) {
            try BPETokenizer(tokens: bpeByteVocabulary(["ab"]), merges: ["a b", line], source: "m.txt")
        }
        do {
            _ = try BPETokenizer(tokens: bpeByteVocabulary(["ab"]), merges: ["a b", line], source: "m.txt")
        } catch let e as TokenizerError {
            guard case let .vocabulary(file, entry, reason) = e else { Issue.record("wrong case \(e)"); return }
            #expect(file == "m.txt")
            #expect(entry == 2)
            #expect(reason.contains("two tokens"), "\(reason)")
        } catch { Issue.record("unexpected \(error)") }
    }

    /// " \u{301}" is a single Character; the merge line must still split at the space.
    @Test func mergeWithCombiningMarkAfterTheSpace() throws {
        let tok = try BPETokenizer(tokens: bpeByteVocabulary(["\u{301}", "a\u{301}"]), merges: ["a \u{301}"], source: "t")
        #expect(tok.mergeCount == 1)
    }

    @Test func mergeReferringToUnknownTokens() {
        let cases: [(merge: String, names: String)] = [("a zz", "right token \"zz\""), ("zz a", "left token \"zz\""),
                                                       ("a c", "merged token \"ac\"")]
        for c in cases {
            do {
                _ = try BPETokenizer(tokens: bpeByteVocabulary(["ab"]), merges: ["a b", c.merge], source: "v.gguf")
                Issue.record("no error for merge \(c.merge)")
            } catch let e as TokenizerError {
                #expect(e.description.hasPrefix("v.gguf:2: "), "\(e)")
                #expect(e.description.contains(c.names), "\(e)")
            } catch { Issue.record("unexpected \(error)") }
        }
    }

    @Test func badTokenTypesAndSpecialIDs() {
        let vocab = bpeByteVocabulary()
        #expect(throws: TokenizerError.metadata(file: "t", key: "tokenizer.ggml.token_type",
                                                reason: "expected 256 entries (one per token), found 2")) {
            try BPETokenizer(tokens: vocab, merges: [], tokenTypes: [1, 1], source: "t")
        }
        var types = Array(repeating: 1, count: 256)
        types[70] = 9
        #expect(throws: TokenizerError.vocabulary(file: "t", entry: 71,
                                                  reason: "token \"F\" has unknown token type 9 (expected 0...6)")) {
            try BPETokenizer(tokens: vocab, merges: [], tokenTypes: types, source: "t")
        }
        #expect(throws: TokenizerError.metadata(file: "t", key: "tokenizer.ggml.eos_token_id",
                                                reason: "id 256 is outside the vocabulary 0..<256")) {
            try BPETokenizer(tokens: vocab, merges: [], eos: 256, source: "t")
        }
        #expect(throws: TokenizerError.self) { try BPETokenizer(tokens: [], merges: [], source: "t") }
    }

    @Test func idsOutOfRange() throws {
        let tok = try BPETokenizer(tokens: bpeByteVocabulary(), merges: [], source: "t")
        #expect(throws: TokenizerError.invalidInput("token id 256 at position 2 is outside the vocabulary 0..<256")) {
            try tok.decode([65, 66, 256])
        }
        #expect(throws: TokenizerError.invalidInput("token id -1 is outside the vocabulary 0..<256")) {
            try tok.pieceBytes(-1)
        }
        var stream = tok.streamingDecoder()
        #expect(throws: TokenizerError.self) { try stream.append(1000) }
        #expect(tok.tokenType(256) == nil && !tok.isControl(256))
    }

    @Test func ggufLoadsSmallTokenizer() throws {
        let tok = try BPETokenizer(gguf: BPEGGUFBuilder.valid().file())
        #expect(tok.vocabularySize == 259)
        #expect(tok.eos == 0 && tok.bos == nil && !tok.addsBOS)
        #expect(tok.encode("abc<|end|>ab1") == [258, 0, 257, tok.id(of: "1")!])
        #expect(tok.encode("<|end|>", parseSpecial: false).count == 7)
        #expect(try tok.decode([258, 0], skipSpecial: true) == "abc")
        #expect(throws: TokenizerError.metadata(file: "test.gguf", key: "tokenizer.chat_template",
                                                reason: "missing: the model has no chat template (a base model?)")) {
            try tok.chatTemplate()
        }
        #expect(try BPETokenizer(gguf: BPEGGUFBuilder.valid(pre: "gpt2").file()).preTokenizer == .gpt2)
    }

    @Test func ggufRefusesOtherTokenizers() throws {
        do {
            _ = try BPETokenizer(gguf: BPEGGUFBuilder.valid(model: "llama").file())
            Issue.record("accepted tokenizer.ggml.model = llama")
        } catch let e as TokenizerError {
            guard case let .unsupported(file, what, _) = e else { Issue.record("wrong case \(e)"); return }
            #expect(file == "test.gguf" && what.contains("'llama'"), "\(e)")
        }
        do {
            _ = try BPETokenizer(gguf: BPEGGUFBuilder.valid(pre: "llama-bpe").file())
            Issue.record("accepted tokenizer.ggml.pre = llama-bpe")
        } catch let e as TokenizerError {
            guard case let .unsupported(_, what, hint) = e else { Issue.record("wrong case \(e)"); return }
            #expect(what.contains("'llama-bpe'") && hint.contains("smollm"), "\(e)")
        }
        #expect(throws: TokenizerError.metadata(file: "test.gguf", key: "tokenizer.ggml.pre", reason: "missing")) {
            try BPETokenizer(gguf: BPEGGUFBuilder.valid(pre: nil).file())
        }
        var noMerges = BPEGGUFBuilder()
        noMerges.string("tokenizer.ggml.model", "gpt2")
        noMerges.string("tokenizer.ggml.pre", "gpt2")
        noMerges.strings("tokenizer.ggml.tokens", bpeByteVocabulary())
        #expect(throws: TokenizerError.metadata(file: "test.gguf", key: "tokenizer.ggml.merges", reason: "missing")) {
            try BPETokenizer(gguf: noMerges.file())
        }
        var b = BPEGGUFBuilder()
        b.string("tokenizer.ggml.model", "gpt2")
        b.string("tokenizer.ggml.pre", "smollm")
        b.strings("tokenizer.ggml.tokens", bpeByteVocabulary(["ab"]))
        b.strings("tokenizer.ggml.merges", ["a b", "ab q"])
        // A key of the wrong type is the GGUF reader's error, naming key and types.
        var wrongType = BPEGGUFBuilder.valid()
        wrongType.strings("tokenizer.ggml.token_type", ["1"])
        #expect(throws: WeightFormatError.self) { try BPETokenizer(gguf: wrongType.file()) }
        do {
            _ = try BPETokenizer(gguf: b.file("bad.gguf"))
            Issue.record("accepted merge 'ab q'")
        } catch let e as TokenizerError {
            #expect(e.description == "bad.gguf:2: merge \"ab q\": merged token \"abq\" is not in the vocabulary")
        }
    }
}
