// WordPiece tokenizer for uncased BERT models (all-MiniLM-L6-v2) from `vocab.txt`.
//
// Pipeline (Hugging Face tokenizers with the model's tokenizer.json, as sentence-transformers
// runs it): literal special tokens ([PAD] [UNK] [CLS] [SEP] [MASK], exact case) are matched
// in the raw text first; the text between them goes through `BasicTokenizer` (clean,
// CJK split, NFD accent stripping, lower-case, whitespace/punctuation split); each word
// becomes greedy longest-match-first WordPiece pieces, continuations prefixed by "##"; a
// word longer than 100 scalars, or one that cannot be covered, becomes a single [UNK].
// `encode` truncates to `maxLength` (256, sentence-transformers' max_seq_length; the
// tokenizer.json itself says 128) including [CLS] and [SEP], and never pads.
//
// Reference: google-research/bert tokenization.py, HF tokenizers `models/wordpiece`,
// ../shared/goldens/reference/minilm_ref.py.
import Foundation

public struct WordPieceTokenizer: Sendable {
    /// Token strings by id (the lines of vocab.txt).
    public let vocabulary: [String]
    /// Id of each token, keyed by its exact UTF-8 bytes (Swift `String` equality is
    /// canonical equivalence, which would let jamo "하" match a vocabulary "하").
    private let ids: [Bytes: Int]

    public let clsID: Int
    public let sepID: Int
    public let unkID: Int
    public let padID: Int
    public let maskID: Int?

    /// Prefix of a piece that continues a word.
    public static let continuationPrefix = "##"
    /// Longer words (in scalars) become [UNK] without trying WordPiece.
    public static let maxInputCharsPerWord = 100
    /// Tokens matched literally in the input text, before normalization.
    public static let specialTokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    /// sentence-transformers' max_seq_length for all-MiniLM-L6-v2.
    public static let defaultMaxLength = 256

    private let basic = BasicTokenizer()
    /// Longest vocabulary entry in scalars (without "##"), to bound the greedy search.
    private let maxPieceScalars: Int
    /// The special tokens present in the vocabulary, as scalars, with their ids.
    private let specials: [([Unicode.Scalar], Int)]

    /// Reads `vocab.txt`: one token per line, id = 0-based line number.
    /// Throws `TokenizerError.vocabulary` naming the file and 1-based line for an empty
    /// line, a duplicate token, invalid UTF-8, or a missing [CLS]/[SEP]/[UNK]/[PAD].
    public init(vocabulary url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw TokenizerError.vocabulary(file: url.path, entry: nil, reason: "cannot read: \(error.localizedDescription)")
        }
        try self.init(vocabularyData: data, file: url.path)
    }

    /// Parses the bytes of a vocab.txt; `file` names it in errors.
    public init(vocabularyData data: Data, file: String = "vocab.txt") throws {
        guard let text = String(data: data, encoding: .utf8) else {
            throw TokenizerError.vocabulary(file: file, entry: nil, reason: "not valid UTF-8")
        }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }  // the final newline
        if lines.isEmpty { throw TokenizerError.vocabulary(file: file, entry: nil, reason: "empty vocabulary") }
        try self.init(tokens: lines.map { $0.hasSuffix("\r") ? String($0.dropLast()) : String($0) }, file: file)
    }

    /// Builds the tokenizer from token strings in id order; `file` names the source in errors
    /// and entries are reported 1-based, like lines.
    public init(tokens: [String], file: String = "vocab.txt") throws {
        var ids: [Bytes: Int] = [:]
        ids.reserveCapacity(tokens.count)
        var longest = 1
        for (i, token) in tokens.enumerated() {
            if token.isEmpty {
                throw TokenizerError.vocabulary(file: file, entry: i + 1, reason: "empty token")
            }
            let key = Bytes(token)
            if let first = ids[key] {
                throw TokenizerError.vocabulary(file: file, entry: i + 1, reason: "duplicate token '\(token)' (first on line \(first + 1))")
            }
            ids[key] = i
            let body = token.hasPrefix(Self.continuationPrefix) ? token.dropFirst(2).unicodeScalars.count : token.unicodeScalars.count
            longest = max(longest, body)
        }
        func required(_ name: String) throws -> Int {
            guard let id = ids[Bytes(name)] else {
                throw TokenizerError.vocabulary(file: file, entry: nil, reason: "special token \(name) is missing")
            }
            return id
        }
        self.vocabulary = tokens
        self.ids = ids
        self.clsID = try required("[CLS]")
        self.sepID = try required("[SEP]")
        self.unkID = try required("[UNK]")
        self.padID = try required("[PAD]")
        self.maskID = ids[Bytes("[MASK]")]
        self.maxPieceScalars = longest
        self.specials = Self.specialTokens.compactMap { s in ids[Bytes(s)].map { (Array(s.unicodeScalars), $0) } }
    }

    /// Number of tokens in the vocabulary.
    public var count: Int { vocabulary.count }

    /// The id of `token` (compared byte for byte), or nil.
    public func id(of token: String) -> Int? { ids[Bytes(token)] }

    /// A vocabulary key: the exact UTF-8 bytes of a token.
    struct Bytes: Hashable {
        var utf8: [UInt8]
        init(_ s: String) { utf8 = Array(s.utf8) }
        init(_ bytes: [UInt8]) { utf8 = bytes }
    }

    // MARK: Encoding

    /// `[CLS] pieces… [SEP]`, the pieces truncated so the whole is at most `maxLength`
    /// ids (and never shorter than [CLS] [SEP]). No padding.
    public func encode(_ text: String, maxLength: Int = WordPieceTokenizer.defaultMaxLength) -> [Int] {
        let room = max(0, maxLength - 2)
        var body = encodeWithoutSpecials(text, atLeast: room)
        if body.count > room { body.removeSubrange(room...) }
        return [clsID] + body + [sepID]
    }

    /// The token strings of `encode(text, maxLength:)`, including [CLS] and [SEP].
    public func tokens(_ text: String, maxLength: Int = WordPieceTokenizer.defaultMaxLength) -> [String] {
        encode(text, maxLength: maxLength).map { vocabulary[$0] }
    }

    /// The pieces of `text` without [CLS]/[SEP] and without truncation. With `atLeast`,
    /// work may stop once that many pieces are produced (the result is then a prefix of
    /// the full one, at least that long), so a huge text costs no more than its head.
    public func encodeWithoutSpecials(_ text: String, atLeast limit: Int = .max) -> [Int] {
        let scalars = text.unicodeScalars
        var out: [Int] = []
        var segmentStart = scalars.startIndex
        var segmentLength = 0
        var i = scalars.startIndex
        // Scan for literal special tokens; everything between them is ordinary text,
        // normalized in pieces cut after an ASCII space or newline (no word, special token
        // or NFD reordering crosses one, so cutting there changes nothing).
        while i < scalars.endIndex && out.count < limit {
            let s = scalars[i]
            if s == "[", let (length, id) = special(at: i, in: scalars) {
                appendPieces(of: scalars[segmentStart..<i], to: &out)
                out.append(id)
                i = scalars.index(i, offsetBy: length)
                segmentStart = i
                segmentLength = 0
            } else {
                i = scalars.index(after: i)
                segmentLength += 1
                if segmentLength >= Self.normalizationChunk && (s == " " || s == "\n") {
                    appendPieces(of: scalars[segmentStart..<i], to: &out)
                    segmentStart = i
                    segmentLength = 0
                }
            }
        }
        if out.count < limit { appendPieces(of: scalars[segmentStart..<scalars.endIndex], to: &out) }
        return out
    }

    /// Scalars normalized at a time by `encodeWithoutSpecials` (cut at the next space).
    static let normalizationChunk = 512

    private func special(at i: String.UnicodeScalarView.Index, in scalars: String.UnicodeScalarView) -> (Int, Int)? {
        for (pattern, id) in specials {
            var j = i
            var matched = true
            for p in pattern {
                guard j < scalars.endIndex, scalars[j] == p else { matched = false; break }
                j = scalars.index(after: j)
            }
            if matched { return (pattern.count, id) }
        }
        return nil
    }

    private func appendPieces(of segment: Substring.UnicodeScalarView, to out: inout [Int]) {
        if segment.isEmpty { return }
        for word in basic.words(segment) {
            wordPiece(word, into: &out)
        }
    }

    /// Greedy longest-match-first WordPiece of one word; [UNK] for the whole word if any
    /// position cannot be matched or the word is longer than 100 scalars.
    public func wordPiece(_ word: [Unicode.Scalar], into out: inout [Int]) {
        if word.count > Self.maxInputCharsPerWord { out.append(unkID); return }
        // UTF-8 of the word, and the byte offset of every scalar boundary.
        var utf8: [UInt8] = []
        var offsets: [Int] = [0]
        for s in word {
            UTF8.encode(s) { utf8.append($0) }
            offsets.append(utf8.count)
        }
        let mark = out.count
        var start = 0
        var key = Bytes([])
        while start < word.count {
            var end = min(word.count, start + maxPieceScalars)
            var hit: Int?
            while start < end {
                key.utf8.removeAll(keepingCapacity: true)
                if start > 0 { key.utf8.append(0x23); key.utf8.append(0x23) }  // "##"
                key.utf8.append(contentsOf: utf8[offsets[start]..<offsets[end]])
                if let id = ids[key] { hit = id; break }
                end -= 1
            }
            guard let id = hit else {
                out.removeSubrange(mark...)
                out.append(unkID)
                return
            }
            out.append(id)
            start = end
        }
    }

    // MARK: Decoding

    /// The text of `ids`: pieces joined by spaces, "##" continuations glued to the previous
    /// piece, then HF's cleanup (" ." -> ".", " n't" -> "n't", ...). Special tokens are
    /// dropped when `skipSpecialTokens`. Throws `TokenizerError.invalidInput` for an id
    /// outside the vocabulary.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = true) throws -> String {
        var pieces: [String] = []
        for id in ids {
            guard id >= 0, id < vocabulary.count else {
                throw TokenizerError.invalidInput("token id \(id) is outside the WordPiece vocabulary (0..<\(vocabulary.count))")
            }
            if skipSpecialTokens, specials.contains(where: { $0.1 == id }) { continue }
            pieces.append(vocabulary[id])
        }
        var text = ""
        for (n, piece) in pieces.enumerated() {
            if piece.hasPrefix(Self.continuationPrefix) {
                text += piece.dropFirst(2)
            } else {
                if n > 0 { text += " " }
                text += piece
            }
        }
        return Self.cleanup(text)
    }

    /// HF tokenizers' `decoders::wordpiece::cleanup`.
    static func cleanup(_ s: String) -> String {
        var s = s
        for (from, to) in [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"),
                           (" n't", "n't"), (" 'm", "'m"), (" do not", " don't"), (" 's", "'s"),
                           (" 've", "'ve"), (" 're", "'re")] {
            s = s.replacingOccurrences(of: from, with: to)
        }
        return s
    }
}
