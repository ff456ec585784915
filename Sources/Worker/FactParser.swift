// Parsing of fact files and fact streams (DESIGN.md section 4):
//   *.jsonl  one JSON fact per line          *.txt  one statement per line
//   *.json   one JSON fact, or an array of them
// A JSON fact is {"prompt", "target", "subject"?, "id"?, "source"?} or {"statement", ...};
// {"op": "retract", "id"} (or "statement") removes one. statement = prompt + " " + target,
// without the space when the prompt ends or the target starts with whitespace.
// Input is hostile: every line is bounded, UTF-8 checked and parsed on its own; a bad one
// becomes a `FactRejection` (file, line, reason) and parsing goes on.
import Foundation
import Storage

public enum FactFormat: Sendable, Equatable {
    case jsonLines, json, text
    /// Lines that start with "{" are JSON facts, other lines statements (pipes, stdin).
    case mixedLines

    /// The format of a file by its extension; nil for files that are not fact files.
    public init?(path: String) {
        let lower = path.lowercased()
        if lower.hasSuffix(".jsonl") || lower.hasSuffix(".ndjson") { self = .jsonLines }
        else if lower.hasSuffix(".json") { self = .json }
        else if lower.hasSuffix(".txt") { self = .text }
        else { return nil }
    }
}

public struct FactParser: Sendable {
    /// Longest line (or .json array element) accepted, in bytes.
    public var maximumLineBytes: Int
    public var sourceKind: FactSource.Kind

    public init(maximumLineBytes: Int = 64 * 1024, sourceKind: FactSource.Kind = .file) {
        self.maximumLineBytes = maximumLineBytes
        self.sourceKind = sourceKind
    }

    /// Parses a whole file (or stream contents) of `format`. `file` names it in rejections
    /// and in the facts' source.
    public func parse(_ bytes: [UInt8], format: FactFormat, file: String) -> ParseResult {
        var body = bytes[...]
        if body.starts(with: [0xEF, 0xBB, 0xBF]) { body = body.dropFirst(3) }  // UTF-8 BOM
        if format == .json { return FactJSONScanner(parser: self, file: file).parse(body) }
        var result = ParseResult()
        var line = 0
        var start = body.startIndex
        while start < body.endIndex {
            line += 1
            let end = body[start...].firstIndex(of: 0x0A) ?? body.endIndex
            switch parseLine(body[start..<end], format: format, file: file, line: line) {
            case .success(let op?): result.facts.append(ParsedFact(line: line, operation: op))
            case .success(nil): break
            case .failure(let r): result.rejections.append(r)
            }
            start = end == body.endIndex ? end : body.index(after: end)
        }
        return result
    }

    /// Parses one line (without its newline) of a line format: the operation, nil for a
    /// blank line, or the rejection.
    public func parseLine(_ raw: ArraySlice<UInt8>, format: FactFormat, file: String, line: Int) -> Result<FactOperation?, FactRejection> {
        func reject(_ r: RejectionReason) -> Result<FactOperation?, FactRejection> {
            .failure(FactRejection(file: file, line: line, reason: r))
        }
        var bytes = raw
        if bytes.last == 0x0D { bytes = bytes.dropLast() }  // CRLF
        guard bytes.count <= maximumLineBytes else { return reject(.lineTooLong(bytes: bytes.count, limit: maximumLineBytes)) }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return reject(.invalidUTF8(offset: firstInvalidUTF8(bytes)))
        }
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty { return .success(nil) }
        let json: Bool
        switch format {
        case .jsonLines, .json: json = true
        case .text: json = false
        case .mixedLines: json = trimmed.hasPrefix("{")
        }
        if !json {
            return .success(.add(statement: trimmed, source: source(file, line, nil)))
        }
        switch operation(fromJSON: Data(bytes), file: file, line: line) {
        case .success(let op): return .success(op)
        case .failure(let r): return reject(r)
        }
    }

    /// One JSON fact (an object) to an operation.
    func operation(fromJSON data: Data, file: String, line: Int) -> Result<FactOperation, RejectionReason> {
        let any: Any
        do { any = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) } catch {
            return .failure(.malformedJSON(Self.describe(error)))
        }
        guard let object = any as? [String: Any] else { return .failure(.notAnObject(found: Self.kind(of: any))) }
        return operation(from: object, file: file, line: line)
    }

    func operation(from o: [String: Any], file: String, line: Int) -> Result<FactOperation, RejectionReason> {
        func string(_ key: String) -> Result<String?, RejectionReason> {
            guard let v = o[key], !(v is NSNull) else { return .success(nil) }
            guard let s = v as? String else { return .failure(.wrongType(field: key, expected: "a string")) }
            return .success(s)
        }
        do {
            let op = try string("op").get()
            let id = try string("id").get()
            let label = try string("source").get()
            let src = source(file, line, label)
            switch op {
            case "retract":
                if let id {
                    guard !id.trimmingCharacters(in: .whitespaces).isEmpty else { return .failure(.emptyField("id")) }
                    return .success(.retractID(id, source: src))
                }
                if let s = try string("statement").get() {
                    guard !FactText.normalize(s).isEmpty else { return .failure(.emptyField("statement")) }
                    return .success(.retractStatement(s, source: src))
                }
                return .failure(.missingField("id"))
            case nil, "add":
                break
            case let other?:
                return .failure(.unknownOperation(other))
            }
            if let id, id.trimmingCharacters(in: .whitespaces).isEmpty { return .failure(.emptyField("id")) }
            let subject = try string("subject").get()
            let prompt = try string("prompt").get()
            let target = try string("target").get()
            if let statement = try string("statement").get(), prompt == nil {
                guard !FactText.normalize(statement).isEmpty else { return .failure(.emptyField("statement")) }
                return .success(.add(statement: statement, subject: subject, id: id, source: src))
            }
            guard let prompt else { return .failure(.missingField(o["target"] == nil ? "statement" : "prompt")) }
            guard let target else { return .failure(.missingField("target")) }
            guard !FactText.normalize(prompt).isEmpty else { return .failure(.emptyField("prompt")) }
            guard !FactText.normalize(target).isEmpty else { return .failure(.emptyField("target")) }
            return .success(.add(statement: Self.statement(prompt: prompt, target: target), prompt: prompt,
                                 target: target, subject: subject, id: id, source: src))
        } catch {
            return .failure(error)
        }
    }

    /// prompt + " " + target, with no added space when the prompt ends or the target
    /// starts with whitespace.
    public static func statement(prompt: String, target: String) -> String {
        if prompt.last?.isWhitespace == true || target.first?.isWhitespace == true { return prompt + target }
        return prompt + " " + target
    }

    func source(_ file: String, _ line: Int, _ label: String?) -> FactSource {
        FactSource(kind: sourceKind, name: label.map { "\(file) [\($0)]" } ?? file, line: line)
    }

    static func kind(of any: Any) -> String {
        switch any {
        case is [Any]: return "an array"
        case is String: return "a string"
        case is NSNull: return "null"
        case is NSNumber: return "a number or boolean"
        default: return "\(type(of: any))"
        }
    }

    static func describe(_ error: Error) -> String {
        let ns = error as NSError
        if let d = ns.userInfo[NSDebugDescriptionErrorKey] as? String { return d }
        return ns.localizedDescription
    }
}

extension RejectionReason: Error {}

/// Offset of the first byte of `bytes` that starts an ill-formed UTF-8 sequence
/// (lead byte, continuation bytes, overlong and surrogate forms checked).
func firstInvalidUTF8(_ bytes: ArraySlice<UInt8>) -> Int {
    let b = Array(bytes)
    var i = 0
    while i < b.count {
        let c = b[i]
        let n: Int, lo: UInt8, hi: UInt8
        switch c {
        case 0x00...0x7F: i += 1; continue
        case 0xC2...0xDF: n = 1; lo = 0x80; hi = 0xBF
        case 0xE0: n = 2; lo = 0xA0; hi = 0xBF
        case 0xED: n = 2; lo = 0x80; hi = 0x9F
        case 0xE1...0xEF: n = 2; lo = 0x80; hi = 0xBF
        case 0xF0: n = 3; lo = 0x90; hi = 0xBF
        case 0xF4: n = 3; lo = 0x80; hi = 0x8F
        case 0xF1...0xF3: n = 3; lo = 0x80; hi = 0xBF
        default: return i
        }
        guard i + n < b.count, (lo...hi).contains(b[i + 1]) else { return i }
        for k in 2...max(2, n) where k <= n { if !(0x80...0xBF).contains(b[i + k]) { return i } }
        i += n + 1
    }
    return i
}
