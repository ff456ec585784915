// The BERT "basic tokenizer": the normalizer and pre-tokenizer that run before WordPiece
// for uncased BERT models (all-MiniLM-L6-v2). A port of Hugging Face tokenizers'
// `BertNormalizer { clean_text, handle_chinese_chars, strip_accents, lowercase }` followed
// by `BertPreTokenizer`, checked against ../shared/goldens/reference/minilm_ref.py.
//
// Everything works on Unicode scalars (Rust `char`s / Python code points), never on
// Swift `Character`s: a grapheme cluster such as "👍🏽" is two scalars for BERT, and the
// 100-character word limit counts scalars.
//
//   1. clean text: delete U+0000, U+FFFD and every control/format/unassigned/private-use
//      scalar (general category C*) except \t \n \r; map whitespace (\t \n \r, Zs) to " ".
//      Control characters are deleted, not turned into spaces ("control\u{7}char" ->
//      "controlchar").
//   2. put spaces around every CJK ideograph, so Han characters become one word each
//      (kana and Hangul are not split here).
//   3. strip accents: NFD, then drop nonspacing marks (Mn). NFD also breaks Hangul
//      syllables into conjoining jamo ("한" -> "ᄒ" "ᅡ" "ᆫ").
//   4. lower-case, scalar by scalar (full mapping, no context: like Rust `char::to_lowercase`).
//   5. split on whitespace, then split every punctuation scalar off as its own word.
import Foundation

public struct BasicTokenizer: Sendable {
    public init() {}

    /// The words of `text` after normalization and pre-tokenization, each a list of scalars.
    public func words(_ text: Substring.UnicodeScalarView) -> [[Unicode.Scalar]] {
        let normalized = normalize(text)
        var words: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        for s in normalized {
            if Self.isWhitespace(s) {
                if !current.isEmpty { words.append(current); current.removeAll(keepingCapacity: true) }
            } else if Self.isPunctuation(s) {
                if !current.isEmpty { words.append(current); current.removeAll(keepingCapacity: true) }
                words.append([s])
            } else {
                current.append(s)
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    /// Steps 1–4 above: the normalized scalars of `text`.
    public func normalize(_ text: Substring.UnicodeScalarView) -> [Unicode.Scalar] {
        // 1 + 2: clean text and pad CJK ideographs.
        var cleaned = String.UnicodeScalarView()
        var needsNFD = false
        for s in text {
            let v = s.value
            if v == 0 || v == 0xFFFD || Self.isControl(s) { continue }
            if Self.isWhitespace(s) {
                cleaned.append(" ")
            } else if Self.isCJK(v) {
                cleaned.append(" "); cleaned.append(s); cleaned.append(" ")
            } else {
                if v >= 0x80 { needsNFD = true }
                cleaned.append(s)
            }
        }
        // 3: NFD and drop Mn. ASCII is already in NFD, so the common case skips Foundation.
        let decomposed: String.UnicodeScalarView = needsNFD
            ? String(cleaned).decomposedStringWithCanonicalMapping.unicodeScalars
            : cleaned
        // 4: lower-case.
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(cleaned.count)
        for s in decomposed {
            if s.properties.generalCategory == .nonspacingMark { continue }
            if s.isASCII {
                let v = s.value
                out.append((v >= 65 && v <= 90) ? Unicode.Scalar(UInt8(v + 32)) : s)
            } else if s.properties.changesWhenLowercased {
                out.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars)
            } else {
                out.append(s)
            }
        }
        return out
    }

    // MARK: Character classes (as in BERT's tokenization.py and HF tokenizers)

    /// \t \n \r, space, and every space separator (Zs); after cleaning also the other
    /// `White_Space` scalars (U+2028, U+2029), which `str.split()` and Rust split on.
    @inlinable
    public static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x20, 0x09, 0x0A, 0x0D: return true
        case 0..<0x80: return false
        default:
            return s.properties.generalCategory == .spaceSeparator || s.properties.isWhitespace
        }
    }

    /// General category C* (Cc, Cf, Cs, Co, Cn) except \t \n \r.
    @inlinable
    public static func isControl(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if v == 0x09 || v == 0x0A || v == 0x0D { return false }
        if v >= 0x20 && v < 0x7F { return false }
        switch s.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned: return true
        default: return false
        }
    }

    /// ASCII symbols and punctuation (so `$`, `+`, `^`, `` ` `` count), and category P*.
    @inlinable
    public static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) {
            return true
        }
        if v < 0x80 { return false }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    /// The CJK Unified Ideographs blocks (and compatibility ideographs) that BERT splits
    /// one per word. Hiragana, katakana and Hangul are deliberately not in this list.
    @inlinable
    public static func isCJK(_ v: UInt32) -> Bool {
        (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v)
            || (0x20000...0x2A6DF).contains(v) || (0x2A700...0x2B73F).contains(v)
            || (0x2B740...0x2B81F).contains(v) || (0x2B820...0x2CEAF).contains(v)
            || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
    }
}
