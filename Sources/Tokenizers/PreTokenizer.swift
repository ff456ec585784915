// The pre-tokenizer of byte-level BPE: it cuts text into the "words" that merges stay inside.
//
// GPT-2 cuts with the regex
//     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// and SmolLM ("smollm" in GGUF `tokenizer.ggml.pre`, `Digits(individual)` in HF tokenizers)
// first isolates every \p{N} scalar, then runs that regex on the text between them.
// The regex is reproduced here as a hand-written scanner over Unicode scalars: it is exact
// (same leftmost-first alternation and backtracking outcome, checked case by case below) and
// much faster than a regex engine. `\s` is the Unicode White_Space property, `\p{L}` and
// `\p{N}` the general categories L* and N*, as in Python's `regex` module and llama.cpp.
//
// Reference: ../shared/goldens/reference/smollm2_ref.py (`pretokenize`), llama.cpp
// `unicode_regex_split_custom_gpt2`.

public struct PreTokenizer: Sendable, Hashable, CustomStringConvertible {
    /// The GGUF name (`tokenizer.ggml.pre`) this pre-tokenizer implements.
    public let name: String
    /// Whether every \p{N} scalar becomes a word of its own before the GPT-2 split.
    public let isolatesNumbers: Bool

    /// SmolLM / SmolLM2: digits one by one, then the GPT-2 regex.
    public static let smollm = PreTokenizer(name: "smollm", isolatesNumbers: true)
    /// Plain GPT-2 regex.
    public static let gpt2 = PreTokenizer(name: "gpt2", isolatesNumbers: false)

    /// GGUF `tokenizer.ggml.pre` names whose split is `smollm`'s (llama.cpp gives them the
    /// same two regexes: `\p{N}`, then GPT-2's).
    static let smollmNames: Set<String> = ["smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b"]
    /// GGUF names whose split is plain GPT-2's ("gpt-2" is llama.cpp's spelling).
    static let gpt2Names: Set<String> = ["gpt2", "gpt-2", "phi-2", "mpt", "olmo", "jais", "trillion", "exaone4", "granite-docling"]

    /// The GGUF `tokenizer.ggml.pre` names this implementation knows, sorted.
    public static var supportedNames: [String] { (smollmNames.union(gpt2Names)).sorted() }

    /// The pre-tokenizer for a GGUF `tokenizer.ggml.pre` value, or nil for one not supported
    /// (llama3, qwen2, deepseek, "default", … use other regexes).
    public static func named(_ name: String) -> PreTokenizer? {
        if smollmNames.contains(name) { return .smollm }
        if gpt2Names.contains(name) { return .gpt2 }
        return nil
    }

    public var description: String { name }

    /// The words of `text`, in order; concatenated they give `text` back.
    public func split(_ text: String) -> [String] {
        var text = text
        return text.withUTF8 { buffer in
            var scratch = Scratch()
            var words: [String] = []
            forEachWord(in: buffer, 0..<buffer.count, scratch: &scratch) { r in
                words.append(String(decoding: UnsafeBufferPointer(rebasing: buffer[r]), as: UTF8.self))
            }
            return words
        }
    }

    /// Reusable per-call buffers: one class and one byte offset per scalar.
    struct Scratch {
        var classes: [ScalarClass] = []
        var offsets: [Int] = []
    }

    /// Calls `body` with the byte range of every word of `bytes[range]` (valid UTF-8, cut at
    /// scalar boundaries), in order and without gaps.
    func forEachWord(in bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>,
                     scratch: inout Scratch, _ body: (Range<Int>) -> Void) {
        if range.isEmpty { return }
        ScalarClass.classify(bytes, range, classes: &scratch.classes, offsets: &scratch.offsets)
        let n = scratch.classes.count
        scratch.classes.withUnsafeBufferPointer { cls in
            scratch.offsets.withUnsafeBufferPointer { off in
                let scanner = GPT2Scanner(bytes: bytes, cls: cls, off: off)
                guard isolatesNumbers else {
                    scanner.scan(0, n, body)
                    return
                }
                var start = 0
                for i in 0..<n where cls[i] == .number {
                    if start < i { scanner.scan(start, i, body) }
                    body(off[i]..<off[i + 1])
                    start = i + 1
                }
                if start < n { scanner.scan(start, n, body) }
            }
        }
    }
}

/// The character classes the GPT-2 regex distinguishes.
enum ScalarClass: UInt8 {
    case other, letter, number, whitespace

    /// Class of each ASCII scalar, so that English text never consults the Unicode tables.
    private static let ascii: [ScalarClass] = (0..<128).map { v in
        switch UInt8(v) {
        case 0x09...0x0D, 0x20: return .whitespace
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"): return .letter
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return .number
        default: return .other
        }
    }

    static func of(_ v: UInt32) -> ScalarClass {
        if v < 128 { return ascii[Int(v)] }
        guard let s = Unicode.Scalar(v) else { return .other }
        let p = s.properties
        if p.isWhitespace { return .whitespace }
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return .number
        default:
            return .other
        }
    }

    /// Decodes `bytes[range]` (valid UTF-8, as a Swift String's storage always is) into one
    /// class and one start offset per scalar; `offsets` gets one extra entry, the range end.
    static func classify(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>,
                         classes: inout [ScalarClass], offsets: inout [Int]) {
        classes.removeAll(keepingCapacity: true)
        offsets.removeAll(keepingCapacity: true)
        var i = range.lowerBound
        let end = range.upperBound
        while i < end {
            let b0 = bytes[i]
            offsets.append(i)
            if b0 < 0x80 {
                classes.append(ascii[Int(b0)])
                i += 1
                continue
            }
            // Multi-byte scalar: length from the lead byte, clamped to the range so that a
            // truncated sequence can never read out of bounds.
            let length = b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : 2
            var v = UInt32(b0) & (length == 2 ? 0x1F : length == 3 ? 0x0F : 0x07)
            var k = 1
            while k < length && i + k < end {
                v = (v << 6) | (UInt32(bytes[i + k]) & 0x3F)
                k += 1
            }
            classes.append(of(v))
            i += k
        }
        offsets.append(end)
    }
}

/// The GPT-2 regex as a scanner over one segment of classified scalars.
private struct GPT2Scanner {
    let bytes: UnsafeBufferPointer<UInt8>
    let cls: UnsafeBufferPointer<ScalarClass>
    let off: UnsafeBufferPointer<Int>

    /// The ASCII byte of scalar `i`, or 0 if it is not ASCII.
    @inline(__always)
    private func ascii(_ i: Int) -> UInt8 {
        let b = bytes[off[i]]
        return b < 0x80 ? b : 0
    }

    /// Length in scalars of a contraction ('s 't 're 've 'm 'll 'd, case-sensitive) at `i`, or 0.
    @inline(__always)
    private func contraction(_ i: Int, _ end: Int) -> Int {
        guard i + 1 < end, ascii(i) == UInt8(ascii: "'") else { return 0 }
        switch ascii(i + 1) {
        case UInt8(ascii: "s"), UInt8(ascii: "t"), UInt8(ascii: "m"), UInt8(ascii: "d"):
            return 2
        case UInt8(ascii: "r"), UInt8(ascii: "v"):
            return i + 2 < end && ascii(i + 2) == UInt8(ascii: "e") ? 3 : 0
        case UInt8(ascii: "l"):
            return i + 2 < end && ascii(i + 2) == UInt8(ascii: "l") ? 3 : 0
        default:
            return 0
        }
    }

    /// Emits the regex matches of scalars `start..<end` (the regex sees only this segment, so
    /// `(?!\S)` succeeds at `end`).
    func scan(_ start: Int, _ end: Int, _ body: (Range<Int>) -> Void) {
        var i = start
        while i < end {
            let c = contraction(i, end)
            if c > 0 {
                body(off[i]..<off[i + c])
                i += c
                continue
            }
            let k = cls[i]
            if k != .whitespace {
                // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+` without the optional space.
                var j = i + 1
                while j < end && cls[j] == k { j += 1 }
                body(off[i]..<off[j])
                i = j
                continue
            }
            if ascii(i) == 0x20 && i + 1 < end && cls[i + 1] != .whitespace {
                // The same three alternatives with their optional leading space: whatever
                // follows the space is a letter, a number or "other", so one of them matches.
                let k1 = cls[i + 1]
                var j = i + 2
                while j < end && cls[j] == k1 { j += 1 }
                body(off[i]..<off[j])
                i = j
                continue
            }
            // Whitespace run i..<q. `\s+(?!\S)` takes all of it at the segment end, else it
            // backtracks one scalar so that the last space can lead the next word; a single
            // whitespace before a non-space falls through to `\s+`.
            var q = i + 1
            while q < end && cls[q] == .whitespace { q += 1 }
            let j = (q == end || q - i == 1) ? q : q - 1
            body(off[i]..<off[j])
            i = j
        }
    }
}
