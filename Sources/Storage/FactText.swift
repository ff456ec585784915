// Normalization, deduplication keys, supersession slots and derived ids of statements.
import Foundation

/// Statement normalization shared by the repository and the parsers: Unicode NFC,
/// whitespace runs collapsed to one space, trimmed. Deduplication compares the
/// normalized text case-insensitively.
public enum FactText {
    public static func normalize(_ s: String) -> String {
        let nfc = s.precomposedStringWithCanonicalMapping
        return nfc.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    }

    /// The deduplication key of a statement (normalized, lower-cased).
    public static func key(_ s: String) -> String { normalize(s).lowercased() }

    /// The supersession slot of a fact with a prompt: subject + prompt, normalized.
    public static func slot(subject: String?, prompt: String) -> String {
        key(subject ?? "") + "\u{1F}" + key(prompt)
    }

    /// `key` of text that is already normalized (what the log stores): lower-casing only.
    /// NFC normalization is the expensive part, and replay at open does this per record.
    static func storedKey(_ normalized: String) -> String { normalized.lowercased() }

    /// `slot` of a stored (normalized) subject and prompt.
    static func storedSlot(subject: String?, prompt: String) -> String {
        (subject ?? "").lowercased() + "\u{1F}" + prompt.lowercased()
    }

    /// The id of a fact given without one: "f" + FNV-1a 64 of the dedup key, 16 hex digits.
    public static func derivedID(_ s: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in key(s).utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        let hex = String(h, radix: 16)
        return "f" + String(repeating: "0", count: 16 - hex.count) + hex
    }
}
