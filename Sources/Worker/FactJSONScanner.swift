// Splits a *.json fact file into its top-level values with their line numbers, so that
// each element of an array is parsed (and rejected) on its own: one malformed element does
// not cost the others, and rejections point at the element's first line. The scanner only
// tracks strings, escapes and bracket depth; the elements themselves go to the JSON parser.
import Foundation
import Storage

struct FactJSONScanner {
    let parser: FactParser
    let file: String

    func parse(_ bytes: ArraySlice<UInt8>) -> ParseResult {
        var result = ParseResult()
        var i = bytes.startIndex
        var line = 1
        func skipSpace() {
            while i < bytes.endIndex, [0x20, 0x09, 0x0D, 0x0A].contains(bytes[i]) {
                if bytes[i] == 0x0A { line += 1 }
                i += 1
            }
        }
        func reject(_ at: Int, _ r: RejectionReason) { result.rejections.append(FactRejection(file: file, line: at, reason: r)) }
        func element(_ range: Range<Int>, line at: Int) {
            let slice = bytes[range]
            guard slice.count <= parser.maximumLineBytes else {
                return reject(at, .lineTooLong(bytes: slice.count, limit: parser.maximumLineBytes))
            }
            guard String(validating: slice, as: UTF8.self) != nil else { return reject(at, .invalidUTF8(offset: firstInvalidUTF8(slice))) }
            switch parser.operation(fromJSON: Data(slice), file: file, line: at) {
            case .success(let op): result.facts.append(ParsedFact(line: at, operation: op))
            case .failure(let r): reject(at, r)
            }
        }
        /// Moves `i` past one JSON value starting at `i`; false at end of input inside it.
        func skipValue() -> Bool {
            var depth = 0
            var inString = false
            while i < bytes.endIndex {
                let c = bytes[i]
                if c == 0x0A { line += 1 }
                if inString {
                    if c == 0x5C { i += 1; if i < bytes.endIndex, bytes[i] == 0x0A { line += 1 } }
                    else if c == 0x22 { inString = false; if depth == 0 { i += 1; return true } }
                } else {
                    switch c {
                    case 0x22: inString = true
                    case 0x7B, 0x5B: depth += 1
                    case 0x7D, 0x5D:
                        if depth == 0 { return true }  // the enclosing array's end
                        depth -= 1
                        if depth == 0 { i += 1; return true }
                    case 0x2C: if depth == 0 { return true }
                    default: break
                    }
                }
                i += 1
            }
            return depth == 0 && !inString
        }

        skipSpace()
        guard i < bytes.endIndex else { return result }
        if bytes[i] != 0x5B {
            // A single value (should be one object).
            let start = i, at = line
            let complete = skipValue()
            skipSpace()
            if !complete { reject(at, .malformedJSON("unterminated value")); return result }
            if i < bytes.endIndex { reject(line, .trailingContent) }
            element(start..<i, line: at)
            if i < bytes.endIndex { result.rejections.sort { $0.line < $1.line } }
            return result
        }
        i += 1
        while true {
            skipSpace()
            guard i < bytes.endIndex else { reject(line, .malformedJSON("unterminated array")); return result }
            if bytes[i] == 0x5D { i += 1; break }
            let start = i, at = line
            let complete = skipValue()
            if !complete { reject(at, .malformedJSON("unterminated element")); return result }
            var end = i
            while end > start, [0x20, 0x09, 0x0D, 0x0A].contains(bytes[end - 1]) { end -= 1 }
            if start == end { reject(at, .malformedJSON("empty array element")) } else { element(start..<end, line: at) }
            skipSpace()
            guard i < bytes.endIndex else { reject(line, .malformedJSON("unterminated array")); return result }
            if bytes[i] == 0x2C { i += 1; continue }
            if bytes[i] == 0x5D { i += 1; break }
            reject(line, .malformedJSON("expected , or ] between elements"))
            return result
        }
        skipSpace()
        if i < bytes.endIndex { reject(line, .trailingContent) }
        return result
    }
}
