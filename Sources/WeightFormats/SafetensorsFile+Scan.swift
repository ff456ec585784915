// The raw scan of a safetensors JSON header that finds duplicate top-level keys, which a
// JSON parser into a dictionary would silently merge.
import Foundation

extension SafetensorsFile {
    /// The first top-level key that appears twice, with its offset in the header.
    static func duplicateTopLevelKey(_ json: UnsafeRawBufferPointer) -> (name: String, offset: Int)? {
        let b = json.bindMemory(to: UInt8.self)
        var seen = Set<String>()
        var depth = 0
        var i = 0
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "\"") {
                let start = i
                i += 1
                var escaped = false
                while i < b.count && b[i] != UInt8(ascii: "\"") {
                    if b[i] == UInt8(ascii: "\\") { escaped = true; i += 1 }
                    i += 1
                }
                let end = min(i, b.count)
                i += 1
                guard depth == 1 else { continue }
                var j = i
                while j < b.count, [0x20, 0x09, 0x0a, 0x0d].contains(b[j]) { j += 1 }
                guard j < b.count, b[j] == UInt8(ascii: ":") else { continue }
                let raw = UnsafeBufferPointer(rebasing: b[(start + 1)..<end])
                var key = String(decoding: raw, as: UTF8.self)
                if escaped, let data = "\"\(key)\"".data(using: .utf8),
                   let s = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) as? String {
                    key = s
                }
                if !seen.insert(key).inserted { return (key, start) }
                continue
            }
            if c == UInt8(ascii: "{") || c == UInt8(ascii: "[") { depth += 1 }
            if c == UInt8(ascii: "}") || c == UInt8(ascii: "]") { depth -= 1 }
            i += 1
        }
        return nil
    }
}
