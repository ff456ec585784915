// The facts and the records of the fact log. A record is framed on disk by `FactLog` as
// [u32 payload length][u32 CRC-32C of payload][payload]; this file knows the payload:
//   u8 kind, u64 sequence, u64 time step, i64 wall time (ms since 1970), then per kind
//   add:       string id, string statement, opt prompt, opt target, opt subject, source
//   retract:   u64 target sequence, string target id, source
//   supersede: u64 old sequence, string old id, u64 new sequence, string new id
//   checkpoint: nothing (keeps the sequence after a log compaction dropped later records)
//   source:    u8 kind, string name, u64 line (0 = none)
// Strings are u32 length + UTF-8; optional strings have a u8 presence flag first.

/// Where a fact or a retraction came from.
public struct FactSource: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Kind: UInt8, Sendable, Codable {
        case api = 0, file = 1, pipe = 2, socket = 3, stdin = 4
    }
    public var kind: Kind
    /// File or pipe path, socket peer, or a free-form name.
    public var name: String
    /// 1-based line in the file or stream, when known.
    public var line: Int?

    public init(kind: Kind, name: String = "", line: Int? = nil) {
        self.kind = kind
        self.name = name
        self.line = line
    }

    public static let api = FactSource(kind: .api)

    public var description: String {
        let n = name.isEmpty ? "\(kind)" : name
        return line.map { "\(n):\($0)" } ?? n
    }
}

/// One knowledge statement as given: the statement text, and its parts when known.
public struct Fact: Sendable, Hashable {
    /// Stable identifier: given by the user, or derived from the normalized text.
    public var id: String
    /// The normalized statement ("The mother tongue of Danielle Darrieux is English").
    public var statement: String
    public var prompt: String?
    public var target: String?
    public var subject: String?
    public var source: FactSource

    public init(id: String, statement: String, prompt: String? = nil, target: String? = nil,
                subject: String? = nil, source: FactSource = .api) {
        self.id = id
        self.statement = statement
        self.prompt = prompt
        self.target = target
        self.subject = subject
        self.source = source
    }
}

/// One record of the fact log.
public struct LogRecord: Sendable, Equatable {
    public enum Body: Sendable, Equatable {
        case add(Fact)
        case retract(target: UInt64, id: String, source: FactSource)
        case supersede(old: UInt64, oldID: String, new: UInt64, newID: String)
        /// Written by log compaction as the last record when the records it dropped went
        /// past the last kept one, so that sequences never go back.
        case checkpoint
    }

    /// Position in the log, from 1, strictly increasing (by one between appends; log
    /// compaction leaves gaps where it dropped records).
    public var sequence: UInt64
    public var timeStep: UInt64
    /// Milliseconds since 1970 when the record was written.
    public var wallTime: Int64
    public var body: Body

    public init(sequence: UInt64, timeStep: UInt64, wallTime: Int64, body: Body) {
        self.sequence = sequence
        self.timeStep = timeStep
        self.wallTime = wallTime
        self.body = body
    }

    /// The largest payload the log accepts (a fact of 64 KiB text fits many times over).
    public static let maximumPayload = 1 << 20
    /// The smallest payload: kind (1) + sequence, time step, wall time (3 x 8), a checkpoint.
    static let minimumPayload = 25

    func payload() -> [UInt8] {
        var w = ByteWriter()
        switch body {
        case .add: w.u8(1)
        case .retract: w.u8(2)
        case .supersede: w.u8(3)
        case .checkpoint: w.u8(4)
        }
        w.u64(sequence)
        w.u64(timeStep)
        w.i64(wallTime)
        switch body {
        case .add(let f):
            w.string(f.id)
            w.string(f.statement)
            w.optionalString(f.prompt)
            w.optionalString(f.target)
            w.optionalString(f.subject)
            Self.write(f.source, &w)
        case .retract(let target, let id, let source):
            w.u64(target)
            w.string(id)
            Self.write(source, &w)
        case .supersede(let old, let oldID, let new, let newID):
            w.u64(old)
            w.string(oldID)
            w.u64(new)
            w.string(newID)
        case .checkpoint:
            break
        }
        return w.bytes
    }

    /// Decodes a payload whose checksum was already verified; throws a reason otherwise.
    static func decode(_ bytes: [UInt8], range: Range<Int>) throws -> LogRecord {
        var r = ByteReader(bytes, range: range)
        do {
            let kind = try r.u8()
            let sequence = try r.u64()
            let timeStep = try r.u64()
            let wallTime = try r.i64()
            let body: Body
            switch kind {
            case 1:
                let id = try r.string()
                let statement = try r.string()
                let prompt = try r.optionalString()
                let target = try r.optionalString()
                let subject = try r.optionalString()
                let source = try readSource(&r)
                body = .add(Fact(id: id, statement: statement, prompt: prompt, target: target,
                                 subject: subject, source: source))
            case 2:
                let target = try r.u64()
                let id = try r.string()
                body = .retract(target: target, id: id, source: try readSource(&r))
            case 3:
                let old = try r.u64()
                let oldID = try r.string()
                let new = try r.u64()
                let newID = try r.string()
                body = .supersede(old: old, oldID: oldID, new: new, newID: newID)
            case 4:
                body = .checkpoint
            default:
                throw ByteReader.Failure.invalid("unknown record kind \(kind)")
            }
            guard r.remaining == 0 else { throw ByteReader.Failure.invalid("\(r.remaining) trailing bytes") }
            return LogRecord(sequence: sequence, timeStep: timeStep, wallTime: wallTime, body: body)
        } catch let ByteReader.Failure.truncated(needed, remaining) {
            throw ByteReader.Failure.invalid("payload truncated: needed \(needed) bytes, \(remaining) left")
        }
    }

    private static func write(_ s: FactSource, _ w: inout ByteWriter) {
        w.u8(s.kind.rawValue)
        w.string(s.name)
        w.u64(UInt64(max(0, s.line ?? 0)))
    }

    private static func readSource(_ r: inout ByteReader) throws -> FactSource {
        let k = try r.u8()
        guard let kind = FactSource.Kind(rawValue: k) else { throw ByteReader.Failure.invalid("unknown source kind \(k)") }
        let name = try r.string()
        let line = try r.u64()
        guard line <= UInt64(Int.max) else { throw ByteReader.Failure.invalid("line \(line) out of range") }
        return FactSource(kind: kind, name: name, line: line == 0 ? nil : Int(line))
    }
}
