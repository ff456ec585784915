// What a reader notices in a free-generated answer, as numbers: fluency as ROME defines it
// (Meng et al. 2022, kmeng01/rome `metrics.py: n_gram_entropy / compute_n_gram_entropy`)
// and whether the answer loops.
//
// Fluency of a text: for n = 2 and 3, the entropy (bits) of the distribution of its word
// n-grams, weighted 2/3 and 4/3, and the two averaged; the fluency of a set of answers is
// the arithmetic mean over answers. ROME splits words with NLTK's `word_tokenize`; `words`
// approximates it (runs of letters and digits with inner apostrophes, hyphens and dots kept;
// every other visible character a token of its own). A text with fewer than n words has
// no n-gram: that n contributes 0 (ROME's numpy would give nan).
//
// Repetition: an answer loops when some word 3-gram occurs three times or more in it
// ("Montreal, Canada. Montreal, Canada. Montreal, Canada." has "Montreal , Canada" three
// times; "Buddhism Buddhism Buddhism Buddhism Buddhism" has "Buddhism Buddhism Buddhism"
// three times). The repetition of a set is the share of its answers that loop.
import Foundation

public enum FluencyMetrics {
    /// ROME's n-gram entropy of `text` (bits; higher reads more varied).
    public static func nGramEntropy(_ text: String) -> Double {
        let w = words(text)
        let weighted = [(2, 2.0 / 3.0), (3, 4.0 / 3.0)].map { n, weight in entropy(ngrams(w, n)) * weight }
        return weighted.reduce(0, +) / Double(weighted.count)
    }

    /// ROME's fluency of a set of texts: the mean of their n-gram entropies (0 for none).
    public static func fluency(_ texts: [String]) -> Double {
        texts.isEmpty ? 0 : texts.map(nGramEntropy).reduce(0, +) / Double(texts.count)
    }

    /// Whether some word 3-gram of `text` occurs `times` times or more.
    public static func loops(_ text: String, times: Int = 3) -> Bool {
        var counts: [[String]: Int] = [:]
        for g in ngrams(words(text), 3) {
            counts[g, default: 0] += 1
            if counts[g]! >= times { return true }
        }
        return false
    }

    /// The share of `texts` that loop (0 for none).
    public static func repetition(_ texts: [String]) -> Double {
        texts.isEmpty ? 0 : Double(texts.filter { loops($0) }.count) / Double(texts.count)
    }

    /// Word tokens, close to NLTK's `word_tokenize`: "Montreal, Canada." -> Montreal , Canada .
    public static func words(_ text: String) -> [String] {
        var out: [String] = []
        var word = ""
        let chars = Array(text)
        func isWordChar(_ c: Character) -> Bool { c.isLetter || c.isNumber }
        for (i, c) in chars.enumerated() {
            if isWordChar(c) {
                word.append(c)
            } else if !word.isEmpty, "'-.".contains(c), i + 1 < chars.count, isWordChar(chars[i + 1]) {
                word.append(c)  // don't, well-known, U.S
            } else {
                if !word.isEmpty { out.append(word); word = "" }
                if !c.isWhitespace { out.append(String(c)) }
            }
        }
        if !word.isEmpty { out.append(word) }
        return out
    }

    static func ngrams(_ words: [String], _ n: Int) -> [[String]] {
        words.count < n ? [] : (0...(words.count - n)).map { Array(words[$0..<($0 + n)]) }
    }

    /// Entropy in bits of the frequency distribution of `items` (0 for none).
    static func entropy(_ items: [[String]]) -> Double {
        guard !items.isEmpty else { return 0 }
        var counts: [[String]: Int] = [:]
        for g in items { counts[g, default: 0] += 1 }
        let total = Double(items.count)
        return counts.values.reduce(0) { h, c in
            let p = Double(c) / total
            return h - p * log2(p)
        }
    }
}
