// GPT-2's reversible byte <-> printable-character map ("bytes_to_unicode").
//
// Byte-level BPE vocabularies never store raw bytes: every byte is replaced by a printable
// Unicode scalar so that merges can be written as text ("Ġ t" is space + "t"). Printable
// Latin-1 bytes map to themselves; the 68 others (controls, space, 0x7F-0xA0, 0xAD) map to
// U+0100 + n in byte order. Port of `bytes_to_unicode` in openai/gpt-2 `encoder.py` and in
// ../shared/goldens/reference/smollm2_ref.py.

public enum ByteLevel {
    /// `scalars[b]` is the character that stands for byte `b` in vocabulary and merge text.
    public static let scalars: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if isPrintable(UInt8(b)) {
                table[b] = Unicode.Scalar(UInt8(b))
            } else {
                table[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// Inverse of `scalars`, indexed by scalar value (all mapped scalars are below U+0144);
    /// -1 where a scalar stands for no byte.
    static let bytesByScalar: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for (b, s) in scalars.enumerated() { table[Int(s.value)] = Int16(b) }
        return table
    }()

    /// The bytes GPT-2 keeps as themselves: '!'...'~', '¡'...'¬', '®'...'ÿ'.
    private static func isPrintable(_ b: UInt8) -> Bool {
        (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
    }

    /// The byte a vocabulary character stands for, or nil if it is not a byte-level character.
    @inline(__always)
    public static func byte(for scalar: Unicode.Scalar) -> UInt8? {
        let v = Int(scalar.value)
        guard v < bytesByScalar.count, bytesByScalar[v] >= 0 else { return nil }
        return UInt8(bytesByScalar[v])
    }

    /// The vocabulary text of raw bytes: `[0x20, 0x61]` -> "Ġa".
    public static func text(of bytes: some Sequence<UInt8>) -> String {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(scalars[Int(b)]) }
        return String(s)
    }

    /// The raw bytes of vocabulary text: "Ġa" -> `[0x20, 0x61]`; nil if a character of `text`
    /// is not in the byte map (an added token written as plain text, for instance).
    public static func bytes(of text: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for s in text.unicodeScalars {
            guard let b = byte(for: s) else { return nil }
            out.append(b)
        }
        return out
    }
}
