// The server-to-client half of the NATS client protocol, parsed incrementally from
// whatever bytes the socket delivered (https://docs.nats.io/reference/reference-protocols/nats-protocol):
//   INFO {json}\r\n      PING\r\n   PONG\r\n   +OK\r\n   -ERR 'message'\r\n
//   MSG <subject> <sid> [reply-to] <#bytes>\r\n<payload>\r\n
//   HMSG <subject> <sid> [reply-to] <#header bytes> <#total bytes>\r\n<headers><payload>\r\n
// The bytes are hostile: a control line longer than `maximumControlLine` without its CRLF,
// a size above `maximumPayload`, a header size above the total, a number that is not
// decimal digits or overflows, or a payload not followed by CRLF is a protocol violation;
// nothing is allocated from a size before it is checked.

/// One delivered message (MSG or HMSG).
public struct NATSMessage: Equatable, Sendable {
    public var subject: String
    public var sid: String
    public var reply: String?
    public var headers: NATSHeaders?
    public var payload: [UInt8]

    public init(subject: String, sid: String, reply: String?, headers: NATSHeaders?, payload: [UInt8]) {
        self.subject = subject
        self.sid = sid
        self.reply = reply
        self.headers = headers
        self.payload = payload
    }
}

/// The header block of an HMSG: "NATS/1.0[ <status>[ <description>]]\r\n(Name: value\r\n)*\r\n".
public struct NATSHeaders: Equatable, Sendable {
    /// A status code (JetStream's 404 No Messages, 408 Request Timeout, 503 No Responders...).
    public var status: Int?
    public var statusDescription: String
    public var fields: [Field]

    public struct Field: Equatable, Sendable {
        public var name: String
        public var value: String
        public init(name: String, value: String) { self.name = name; self.value = value }
    }

    public init(status: Int? = nil, statusDescription: String = "", fields: [Field] = []) {
        self.status = status
        self.statusDescription = statusDescription
        self.fields = fields
    }

    /// The first value of `name` (case-insensitive, as HTTP headers).
    public func value(_ name: String) -> String? {
        fields.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// Parses a header block; nil when it is not one.
    public static func parse(_ bytes: ArraySlice<UInt8>) -> NATSHeaders? {
        guard let text = String(validating: bytes, as: UTF8.self) else { return nil }
        var lines = text.components(separatedBy: "\r\n")
        guard let first = lines.first, first.hasPrefix("NATS/1.0") else { return nil }
        lines.removeFirst()
        var h = NATSHeaders()
        let rest = first.dropFirst("NATS/1.0".count).drop { $0 == " " }
        if !rest.isEmpty {
            let code = rest.prefix { $0 != " " }
            guard let status = Int(code), (100...999).contains(status) else { return nil }
            h.status = status
            h.statusDescription = String(rest.dropFirst(code.count).drop { $0 == " " })
        }
        for line in lines where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { return nil }
            let name = String(line[..<colon]).trimmingSpaces()
            guard !name.isEmpty else { return nil }
            h.fields.append(Field(name: name, value: String(line[line.index(after: colon)...]).trimmingSpaces()))
        }
        return h
    }

    /// The header block as sent in HPUB.
    public func encoded() -> [UInt8] {
        var s = "NATS/1.0"
        if let status { s += " \(status)" + (statusDescription.isEmpty ? "" : " " + statusDescription) }
        s += "\r\n"
        for f in fields { s += "\(f.name): \(f.value)\r\n" }
        s += "\r\n"
        return Array(s.utf8)
    }
}

/// What the server sent.
public enum NATSFrame: Equatable, Sendable {
    /// The INFO object's JSON text.
    case info([UInt8])
    case message(NATSMessage)
    case ping
    case pong
    case ok
    case error(String)
}

public struct NATSParser: Sendable {
    /// Longest control line accepted (INFO carries the cluster's URLs: a few KiB).
    public var maximumControlLine: Int
    /// Largest payload (headers included) accepted; the server's `max_payload` once known.
    public var maximumPayload: Int
    /// The server, for error messages.
    public var server: String
    private var buffer: [UInt8] = []
    private var start = 0

    public init(server: String, maximumControlLine: Int = 64 * 1024, maximumPayload: Int = 8 << 20) {
        self.server = server
        self.maximumControlLine = maximumControlLine
        self.maximumPayload = maximumPayload
    }

    /// Bytes received and not yet parsed.
    public var buffered: Int { buffer.count - start }

    public mutating func append<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        // Drop what was parsed once it is most of the buffer: appends stay amortized O(n).
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete frame, nil when more bytes are needed.
    public mutating func next() throws -> NATSFrame? {
        guard let lineEnd = findCRLF() else {
            if buffered > maximumControlLine { throw violation("control line longer than \(maximumControlLine) bytes") }
            return nil
        }
        guard lineEnd - start <= maximumControlLine else { throw violation("control line longer than \(maximumControlLine) bytes") }
        let line = buffer[start..<lineEnd]
        let opEnd = line.firstIndex(where: { $0 == 0x20 || $0 == 0x09 }) ?? line.endIndex
        let op = String(decoding: line[line.startIndex..<opEnd], as: UTF8.self).uppercased()
        let rest = line[opEnd...]
        switch op {
        case "PING": start = lineEnd + 2; return .ping
        case "PONG": start = lineEnd + 2; return .pong
        case "+OK": start = lineEnd + 2; return .ok
        case "-ERR":
            start = lineEnd + 2
            var m = String(decoding: rest, as: UTF8.self).trimmingSpaces()
            if m.hasPrefix("'") && m.hasSuffix("'") && m.count >= 2 { m = String(m.dropFirst().dropLast()) }
            return .error(m)
        case "INFO":
            start = lineEnd + 2
            return .info(Array(rest.drop { $0 == 0x20 || $0 == 0x09 }))
        case "MSG", "HMSG":
            let args = rest.split(whereSeparator: { $0 == 0x20 || $0 == 0x09 }).map { String(decoding: $0, as: UTF8.self) }
            let headed = op == "HMSG"
            let sizes = headed ? 2 : 1
            guard args.count == 2 + sizes || args.count == 3 + sizes else {
                throw violation("\(op) with \(args.count) arguments")
            }
            let total = try size(args[args.count - 1], op)
            let headerBytes = headed ? try size(args[args.count - 2], op) : 0
            guard headerBytes <= total else { throw violation("\(op) header size \(headerBytes) exceeds total \(total)") }
            let payloadStart = lineEnd + 2
            // The whole frame must be here: payload and its CRLF.
            guard buffer.count - payloadStart >= total + 2 else { return nil }
            guard buffer[payloadStart + total] == 0x0D, buffer[payloadStart + total + 1] == 0x0A else {
                throw violation("\(op) payload of \(total) bytes not followed by CRLF")
            }
            var headers: NATSHeaders?
            if headed {
                guard let h = NATSHeaders.parse(buffer[payloadStart..<payloadStart + headerBytes]) else {
                    throw violation("HMSG header block is not NATS/1.0 headers")
                }
                headers = h
            }
            let payload = Array(buffer[payloadStart + headerBytes..<payloadStart + total])
            start = payloadStart + total + 2
            return .message(NATSMessage(subject: args[0], sid: args[1], reply: args.count == 3 + sizes ? args[2] : nil,
                                        headers: headers, payload: payload))
        default:
            throw violation("unknown operation '\(op.prefix(16))'")
        }
    }

    private func findCRLF() -> Int? {
        var i = start
        while i + 1 < buffer.count {
            if buffer[i] == 0x0D && buffer[i + 1] == 0x0A { return i }
            i += 1
        }
        return nil
    }

    /// A byte count: decimal digits only, at most `maximumPayload`.
    private func size(_ s: String, _ op: String) throws -> Int {
        guard !s.isEmpty, s.count <= 12, s.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let n = Int(s) else {
            throw violation("\(op) size '\(s.prefix(16))' is not a byte count")
        }
        guard n <= maximumPayload else { throw violation("\(op) of \(n) bytes exceeds the limit of \(maximumPayload)") }
        return n
    }

    private func violation(_ reason: String) -> NATSError { .protocolViolation(server: server, reason: reason) }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return String(s)
    }
}
