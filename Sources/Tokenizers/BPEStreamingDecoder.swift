// Incremental detokenizer for streamed generation.
//
// A byte-level token can end in the middle of a character ("日" is split over two tokens in
// SmolLM2), so printing each token's bytes as text would print U+FFFD. This decoder keeps
// back the bytes of an unfinished character (at most 3) and yields text as soon as it is
// whole. Bytes that can never become valid UTF-8 are yielded as U+FFFD right away, so a
// stream never stalls; `finish()` flushes a dangling tail the same way.

public struct BPEStreamingDecoder: Sendable {
    public let tokenizer: BPETokenizer
    /// Whether control tokens are dropped rather than rendered as their text.
    public let skipSpecial: Bool
    /// Bytes of an unfinished character carried over from earlier tokens.
    private var pending: [UInt8] = []

    public init(tokenizer: BPETokenizer, skipSpecial: Bool = false) {
        self.tokenizer = tokenizer
        self.skipSpecial = skipSpecial
    }

    /// Whether bytes are held back waiting for the rest of a character.
    public var hasPendingBytes: Bool { !pending.isEmpty }

    /// Adds one token; returns the text completed by it (possibly empty).
    /// - Throws: `TokenizerError.invalidInput` if `id` is outside the vocabulary.
    public mutating func append(_ id: Int) throws -> String {
        if skipSpecial && tokenizer.isControl(id) { return "" }
        pending += try tokenizer.pieceBytes(id)
        let cut = Self.completePrefixLength(pending)
        if cut == 0 { return "" }
        let text = String(decoding: pending[..<cut], as: UTF8.self)
        pending.removeFirst(cut)
        return text
    }

    /// Adds several tokens; returns the text completed by them.
    public mutating func append(contentsOf ids: [Int]) throws -> String {
        var text = ""
        for id in ids { text += try append(id) }
        return text
    }

    /// Returns what is still held back (an unfinished character, as U+FFFD) and resets.
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Length of the longest prefix of `bytes` that does not end inside a character that
    /// later bytes could still complete.
    static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        let n = bytes.count
        // Walk back over at most 3 continuation bytes to the last lead byte.
        var i = n - 1
        while i >= 0 && i >= n - 4 && bytes[i] & 0xC0 == 0x80 { i -= 1 }
        guard i >= 0 && i >= n - 4 else { return n }
        let lead = bytes[i]
        let needed: Int
        switch lead {
        case 0xC2...0xDF: needed = 2
        case 0xE0...0xEF: needed = 3
        case 0xF0...0xF4: needed = 4
        default: return n  // ASCII, or a byte that can never start a character
        }
        return n - i < needed ? i : n
    }
}
