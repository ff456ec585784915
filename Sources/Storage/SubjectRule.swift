// This project's addition to RECIPE's retrieval: the subject rule. A fact that names its
// subject ("Danielle Darrieux") gains `weight` on its scaled similarity for a query that
// names that subject too, and loses `weight` for a query that does not; facts without a
// subject are scored as the paper does. The Knowledge Sentinel still decides.
//
// Why: the dense keys rank the right fact first for ~96% of CounterFact paraphrases, but no
// sentinel placement separates paraphrases ("... Danielle Darrieux's mother tongue is")
// from questions about other subjects through the same relation ("The mother tongue of
// Léon Blum is"): the sentence embedding is dominated by the relation's wording, the
// subject's identity is what differs, and a whole-word match sees exactly that. Training
// sees the same scores (`RecipeTrainer.subjectOffsets`), so that the sentinel learns where
// to sit with the rule in place. Weight 0 turns the rule off.
import Glibc

public struct SubjectRule: Sendable, Equatable {
    /// Added to (subject named) or subtracted from (subject not named) a fact's scaled score.
    public var weight: Float
    /// How many dense candidates the rule rescores before the best is chosen.
    public static let candidates = 8

    public init(weight: Float) { self.weight = weight }

    public static let off = SubjectRule(weight: 0)
    public var isOn: Bool { weight != 0 }

    /// Text prepared for matching: normalized (`FactText.normalize`), lower-cased, UTF-8.
    public struct Text: Sendable {
        let bytes: [UInt8]
        public init(_ text: String) { bytes = Array(FactText.key(text).utf8) }
    }

    /// Whether `query` names `subject`: its normalized, lower-cased text occurs in the query as
    /// whole words (no letter, digit or combining mark on either side; "Riga's" names "Riga",
    /// "Rigatoni" does not). Nil when the subject is absent or blank: the rule does not apply.
    public static func names(_ subject: String?, in query: Text) -> Bool? {
        guard let subject else { return nil }
        return names(Text(subject), in: query)
    }

    /// `names` for a subject already prepared (what training calls, per batch, many times).
    public static func names(_ subject: Text, in query: Text) -> Bool? {
        let s = subject.bytes, q = query.bytes
        guard !s.isEmpty else { return nil }
        guard s.count <= q.count else { return false }
        return q.withUnsafeBufferPointer { qb in
            s.withUnsafeBufferPointer { sb in
                let base = qb.baseAddress!, last = q.count - s.count
                var from = 0
                // memchr for the first byte, memcmp for the rest (glibc's memmem is not exported).
                while from <= last, let hit = memchr(base + from, Int32(s[0]), last - from + 1) {
                    let start = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
                    if memcmp(base + start, sb.baseAddress!, s.count) == 0,
                       !isWordScalar(before: start, in: qb), !isWordScalar(at: start + s.count, in: qb) { return true }
                    from = start + 1
                }
                return false
            }
        }
    }

    /// Whether the scalar starting at byte `i` (none past the end) is part of a word.
    private static func isWordScalar(at i: Int, in b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard i < b.count else { return false }
        var end = i + 1
        while end < b.count, b[end] & 0xC0 == 0x80 { end += 1 }
        return isWordScalar(b, i..<end)
    }

    /// Whether the scalar ending just before byte `i` (none at the start) is part of a word.
    private static func isWordScalar(before i: Int, in b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard i > 0 else { return false }
        var start = i - 1
        while start > 0, b[start] & 0xC0 == 0x80 { start -= 1 }
        return isWordScalar(b, start..<i)
    }

    private static func isWordScalar(_ b: UnsafeBufferPointer<UInt8>, _ r: Range<Int>) -> Bool {
        if r.count == 1 {
            let c = b[r.lowerBound]
            return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A)
        }
        guard let scalar = String(decoding: UnsafeBufferPointer(rebasing: b[r]), as: UTF8.self).unicodeScalars.first else { return false }
        let p = scalar.properties
        switch p.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber, .nonspacingMark, .spacingMark, .enclosingMark: return true
        default: return p.isAlphabetic
        }
    }

    /// `score` with the rule applied, for a fact whose subject is named (true), not named
    /// (false) or unknown (nil).
    public func adjusted(_ score: Float, named: Bool?) -> Float {
        switch named {
        case true?: return score + weight
        case false?: return score - weight
        case nil: return score
        }
    }

    /// `hits` rescored (each with whether its subject is named), best first.
    public func rescored(_ hits: [SearchHit], subject: (Int) -> String?, query: Text) -> [(hit: SearchHit, named: Bool?)] {
        hits.map { h in
            let named = isOn ? Self.names(subject(h.row), in: query) : nil
            return (SearchHit(row: h.row, score: adjusted(h.score, named: named)), named)
        }
        .sorted { $0.hit.score > $1.hit.score || ($0.hit.score == $1.hit.score && $0.hit.row < $1.hit.row) }
    }
}
