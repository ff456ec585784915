// Literal special tokens in text ("<|im_start|>"), found before pre-tokenization.
//
// At each byte the longest token that matches wins (so "<|im_start|>" beats a shorter
// token that prefixes it), which is the reference's scan and HF tokenizers' leftmost-longest
// matching. No whitespace is stripped around a match.

struct BPESpecialTokens: Sendable {
    /// Token bytes and id, longest first (ties by id, for determinism).
    private let entries: [(bytes: [UInt8], id: Int)]
    /// `starts[b]`: some token starts with byte `b`, the cheap test done at every byte.
    private let starts: [Bool]

    var isEmpty: Bool { entries.isEmpty }

    init(_ tokens: [(bytes: [UInt8], id: Int)]) {
        entries = tokens.filter { !$0.bytes.isEmpty }.sorted {
            $0.bytes.count != $1.bytes.count ? $0.bytes.count > $1.bytes.count : $0.id < $1.id
        }
        var starts = [Bool](repeating: false, count: 256)
        for e in entries { starts[Int(e.bytes[0])] = true }
        self.starts = starts
    }

    /// The longest token at byte `i`, if any.
    @inline(__always)
    func match(_ bytes: UnsafeBufferPointer<UInt8>, at i: Int) -> (id: Int, length: Int)? {
        guard starts[Int(bytes[i])] else { return nil }
        let available = bytes.count - i
        outer: for e in entries where e.bytes.count <= available {
            for (k, b) in e.bytes.enumerated() where bytes[i + k] != b { continue outer }
            return (e.id, e.bytes.count)
        }
        return nil
    }
}
