// Byte-level BPE tokenizer (GPT-2 family: SmolLM2 and any GGUF with tokenizer.ggml.model
// "gpt2"): special tokens, then the pre-tokenizer, then merges on each word's bytes.
//
// Stages, one file each as in swift-transformers: `PreTokenizer` (word split),
// `ByteLevel` (byte <-> vocabulary character map), `BPEMerges` (merge loop),
// `BPEWordCache`, `BPEStreamingDecoder`, GGUF loading in `BPETokenizer+GGUF.swift`.
// Reference: ../shared/goldens/reference/smollm2_ref.py (`BPETokenizer`), which agrees with
// llama.cpp and HF tokenizers on the golden strings.

public final class BPETokenizer: Sendable {
    /// GGUF `tokenizer.ggml.token_type` values (llama.cpp `llama_token_type`).
    public enum TokenType: Int32, Sendable {
        case undefined = 0, normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    /// Number of tokens; valid ids are `0..<vocabularySize`.
    public let vocabularySize: Int
    /// Beginning-of-sequence id (`tokenizer.ggml.bos_token_id`), if the model names one.
    public let bos: Int?
    /// End-of-sequence id (`tokenizer.ggml.eos_token_id`), if the model names one.
    public let eos: Int?
    /// Padding id (`tokenizer.ggml.padding_token_id`), if the model names one.
    public let padding: Int?
    /// Whether the model expects BOS in front of a prompt (`tokenizer.ggml.add_bos_token`);
    /// `encode(addSpecial: true)` adds it.
    public let addsBOS: Bool
    /// Whether the model expects EOS after the text (`tokenizer.ggml.add_eos_token`);
    /// `encode(addSpecial: true)` adds it.
    public let addsEOS: Bool
    /// The Jinja chat template text (`tokenizer.chat_template`), if any; see `ChatTemplate`.
    public let chatTemplateText: String?
    public let preTokenizer: PreTokenizer
    /// Where the vocabulary came from (a file path), as named in errors.
    public let source: String

    private let tokenTypes: [TokenType]
    /// Vocabulary text by id ("Ġthe").
    private let tokens: [String]
    /// Vocabulary text -> id. For a repeated text the last id wins, as in llama.cpp.
    private let idsByText: [String: Int]
    /// Bytes of every token, concatenated; token `i` is `pieceData[pieceStarts[i]..<pieceStarts[i+1]]`.
    private let pieceData: [UInt8]
    private let pieceStarts: [Int]
    private let merges: BPEMerges
    /// Control and user-defined tokens: matched in text by `encode(parseSpecial: true)`.
    private let specials: BPESpecialTokens
    /// User-defined tokens only: matched even by `encode(parseSpecial: false)`.
    private let userDefined: BPESpecialTokens
    private let cache = BPEWordCache()

    /// Builds a tokenizer from vocabulary arrays (as stored in GGUF metadata).
    ///
    /// - Parameters:
    ///   - tokens: vocabulary in id order, in GPT-2 byte-level text ("Ġthe").
    ///   - merges: "left right" lines, highest priority first.
    ///   - tokenTypes: one GGUF token type per token; nil means all normal.
    ///   - source: file name used in error messages.
    /// - Throws: `TokenizerError` naming the entry for an empty vocabulary, mismatched
    ///   counts, unknown token types, malformed merges, out-of-range special ids.
    public init(tokens: [String], merges: [String], tokenTypes: [Int]? = nil,
                preTokenizer: PreTokenizer = .smollm, bos: Int? = nil, eos: Int? = nil,
                padding: Int? = nil, addsBOS: Bool = false, addsEOS: Bool = false, chatTemplate: String? = nil,
                source: String = "tokenizer") throws {
        guard !tokens.isEmpty else {
            throw TokenizerError.vocabulary(file: source, entry: nil, reason: "the vocabulary is empty")
        }
        guard tokens.count <= Int(Int32.max) else {
            throw TokenizerError.vocabulary(file: source, entry: nil,
                                            reason: "\(tokens.count) tokens exceed the 2^31-1 this tokenizer indexes")
        }
        let types: [TokenType]
        if let tokenTypes {
            guard tokenTypes.count == tokens.count else {
                throw TokenizerError.metadata(
                    file: source, key: "tokenizer.ggml.token_type",
                    reason: "expected \(tokens.count) entries (one per token), found \(tokenTypes.count)")
            }
            types = try tokenTypes.enumerated().map { i, t in
                guard let type = Int32(exactly: t).flatMap(TokenType.init(rawValue:)) else {
                    throw TokenizerError.vocabulary(
                        file: source, entry: i + 1,
                        reason: "token \(BPEMerges.quote(tokens[i])) has unknown token type \(t) (expected 0...6)")
                }
                return type
            }
        } else {
            types = Array(repeating: .normal, count: tokens.count)
        }
        for (key, id) in [("tokenizer.ggml.bos_token_id", bos), ("tokenizer.ggml.eos_token_id", eos),
                          ("tokenizer.ggml.padding_token_id", padding)] {
            if let id, !(0..<tokens.count).contains(id) {
                throw TokenizerError.metadata(file: source, key: key,
                                              reason: "id \(id) is outside the vocabulary 0..<\(tokens.count)")
            }
        }
        if addsBOS && bos == nil {
            throw TokenizerError.metadata(file: source, key: "tokenizer.ggml.bos_token_id",
                                          reason: "missing, but tokenizer.ggml.add_bos_token is true")
        }
        if addsEOS && eos == nil {
            throw TokenizerError.metadata(file: source, key: "tokenizer.ggml.eos_token_id",
                                          reason: "missing, but tokenizer.ggml.add_eos_token is true")
        }

        var idsByText = [String: Int](minimumCapacity: tokens.count)
        var pieceData: [UInt8] = []
        var pieceStarts: [Int] = [0]
        pieceData.reserveCapacity(tokens.count * 8)
        pieceStarts.reserveCapacity(tokens.count + 1)
        var specials: [(bytes: [UInt8], id: Int)] = [], userDefined: [(bytes: [UInt8], id: Int)] = []
        for (id, text) in tokens.enumerated() {
            idsByText[text] = id
            switch types[id] {
            case .normal, .byte, .undefined:
                // A normal token outside the byte map (an added token written as plain text
                // by some converters) stands for its own UTF-8, as in HF tokenizers.
                pieceData += ByteLevel.bytes(of: text) ?? Array(text.utf8)
            case .control:
                pieceData += Array(text.utf8)
                specials.append((Array(text.utf8), id))
            case .userDefined:
                pieceData += Array(text.utf8)
                specials.append((Array(text.utf8), id))
                userDefined.append((Array(text.utf8), id))
            case .unknown, .unused:
                pieceData += Array(text.utf8)
            }
            pieceStarts.append(pieceData.count)
        }

        self.merges = try BPEMerges(merges: merges, vocabulary: idsByText, source: source)
        self.vocabularySize = tokens.count
        self.tokenTypes = types
        self.tokens = tokens
        self.idsByText = idsByText
        self.pieceData = pieceData
        self.pieceStarts = pieceStarts
        self.specials = BPESpecialTokens(specials)
        self.userDefined = BPESpecialTokens(userDefined)
        self.preTokenizer = preTokenizer
        self.bos = bos
        self.eos = eos
        self.padding = padding
        self.addsBOS = addsBOS
        self.addsEOS = addsEOS
        self.chatTemplateText = chatTemplate
        self.source = source
    }

    /// Number of merge rules.
    public var mergeCount: Int { merges.count }

    /// The id of a vocabulary entry given in its vocabulary text ("Ġthe", "<|im_end|>").
    public func id(of token: String) -> Int? { idsByText[token] }

    /// The vocabulary text of `id` ("Ġthe": GPT-2 byte characters, see `ByteLevel`), or nil
    /// if `id` is outside the vocabulary. For display; `pieceBytes` gives the real bytes.
    public func token(_ id: Int) -> String? {
        (0..<vocabularySize).contains(id) ? tokens[id] : nil
    }

    /// The token type of `id`, or nil if `id` is outside the vocabulary.
    public func tokenType(_ id: Int) -> TokenType? {
        (0..<vocabularySize).contains(id) ? tokenTypes[id] : nil
    }

    /// Whether `id` is a control token (`<|im_end|>`…): dropped by `decode(skipSpecial: true)`.
    public func isControl(_ id: Int) -> Bool { tokenType(id) == .control }

    /// Whether `id` is matched in text by `encode(parseSpecial: true)` (control or user-defined).
    public func isSpecial(_ id: Int) -> Bool {
        let t = tokenType(id)
        return t == .control || t == .userDefined
    }
}

// MARK: - Encoding

extension BPETokenizer {
    /// Token ids of `text`.
    ///
    /// - Parameter parseSpecial: match control tokens written literally in the text
    ///   ("<|im_start|>"), longest first and without trimming whitespace around them, as
    ///   llama.cpp `llama_tokenize(parse_special: true)`. With false they are plain text.
    ///   User-defined tokens (type 4; SmolLM2 has none) are matched either way, as llama.cpp
    ///   and HF tokenizers do. Text from untrusted users should be encoded with false.
    /// - Parameter addSpecial: add BOS / EOS where the model asks for them (`addsBOS`,
    ///   `addsEOS`), as llama.cpp `llama_tokenize(add_special: true)`. SmolLM2 asks for neither.
    public func encode(_ text: String, parseSpecial: Bool = true, addSpecial: Bool = false) -> [Int] {
        var ids = encodeText(text, parseSpecial: parseSpecial)
        if addSpecial, addsBOS, let bos { ids.insert(bos, at: 0) }
        if addSpecial, addsEOS, let eos { ids.append(eos) }
        return ids
    }

    private func encodeText(_ text: String, parseSpecial: Bool) -> [Int] {
        var text = text
        let matcher = parseSpecial ? specials : userDefined
        return text.withUTF8 { bytes in
            var out: [Int] = []
            out.reserveCapacity(bytes.count / 3 + 2)
            var state = EncodeState()
            guard !matcher.isEmpty else {
                encodePlain(bytes, 0..<bytes.count, &state, &out)
                return out
            }
            var plainStart = 0, i = 0
            while i < bytes.count {
                if let hit = matcher.match(bytes, at: i) {
                    encodePlain(bytes, plainStart..<i, &state, &out)
                    out.append(hit.id)
                    i += hit.length
                    plainStart = i
                } else {
                    i += 1
                }
            }
            encodePlain(bytes, plainStart..<bytes.count, &state, &out)
            return out
        }
    }

    /// Scratch buffers reused across the words of one `encode` call.
    private struct EncodeState {
        var pre = PreTokenizer.Scratch()
        var symbols: [Int32] = []
        var word: [Int] = []
    }

    /// Encodes text that contains no special tokens (or where they are not parsed).
    private func encodePlain(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>,
                             _ state: inout EncodeState, _ out: inout [Int]) {
        if range.isEmpty { return }
        var symbols = state.symbols, word = state.word
        preTokenizer.forEachWord(in: bytes, range, scratch: &state.pre) { w in
            guard let key = BPEWordCache.Key(bytes, w) else {
                merges.encodeWord(bytes, w, symbols: &symbols, into: &out)
                return
            }
            if let ids = cache.get(key) {
                for id in ids { out.append(Int(id)) }
                return
            }
            word.removeAll(keepingCapacity: true)
            merges.encodeWord(bytes, w, symbols: &symbols, into: &word)
            cache.put(key, word.map { Int32($0) })
            out += word
        }
        state.symbols = symbols
        state.word = word
    }
}

// MARK: - Decoding

extension BPETokenizer {
    /// The raw bytes token `id` stands for (the text of a control token). A piece may be
    /// an incomplete UTF-8 sequence: concatenate pieces before decoding them as text.
    /// - Throws: `TokenizerError.invalidInput` if `id` is outside the vocabulary.
    public func pieceBytes(_ id: Int) throws -> [UInt8] {
        try checkID(id, position: nil)
        return Array(pieceData[pieceStarts[id]..<pieceStarts[id + 1]])
    }

    /// The bytes of a sequence of tokens.
    /// - Parameter skipSpecial: drop control tokens instead of rendering their text.
    public func decodeBytes(_ ids: [Int], skipSpecial: Bool = false) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(ids.count * 4)
        for (position, id) in ids.enumerated() {
            try checkID(id, position: position)
            if skipSpecial && tokenTypes[id] == .control { continue }
            out += pieceData[pieceStarts[id]..<pieceStarts[id + 1]]
        }
        return out
    }

    /// The text of a sequence of tokens; invalid UTF-8 (a sequence cut in the middle of a
    /// character) becomes U+FFFD, as in the reference (`errors="replace"`).
    /// - Parameter skipSpecial: drop control tokens instead of rendering their text.
    /// - Throws: `TokenizerError.invalidInput` naming the position of an id outside the vocabulary.
    public func decode(_ ids: [Int], skipSpecial: Bool = false) throws -> String {
        String(decoding: try decodeBytes(ids, skipSpecial: skipSpecial), as: UTF8.self)
    }

    /// A decoder that turns ids into text as soon as their bytes form whole characters.
    public func streamingDecoder(skipSpecial: Bool = false) -> BPEStreamingDecoder {
        BPEStreamingDecoder(tokenizer: self, skipSpecial: skipSpecial)
    }

    private func checkID(_ id: Int, position: Int?) throws {
        guard (0..<vocabularySize).contains(id) else {
            let at = position.map { " at position \($0)" } ?? ""
            throw TokenizerError.invalidInput(
                "token id \(id)\(at) is outside the vocabulary 0..<\(vocabularySize)")
        }
    }
}
