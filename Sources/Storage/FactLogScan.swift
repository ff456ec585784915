// Reads a fact log's bytes into records and tells a torn tail from damage in the middle.
// A crash during an append can only leave a bad frame at the end of the log (the append was
// not acknowledged). A bad frame with intact frames after it is damage to acknowledged
// records (a flipped bit, a bad sector, a stray write): cutting the log there would silently
// drop every acknowledged record that follows. So the scan looks past a bad frame for the
// next intact one (byte by byte: the damaged length field cannot be trusted) and reports
// every damaged range with the intact records between them.
// Frame layout (FactLog.swift): 16-byte header, then [u32 length][u32 CRC-32C][payload].
import Posix

/// A byte range of a log that holds no intact frame.
public struct DamagedRange: Sendable, Equatable {
    /// Byte offset of the first bad byte.
    public let offset: Int
    public let length: Int
    /// Why the frame that starts there is bad.
    public let reason: String
    /// The record sequence of the last intact record before the range (0: none).
    public let after: UInt64
    /// The record sequence of the first intact record after it (nil: the range is the tail).
    public let before: UInt64?
}

struct FactLogScan {
    /// Intact records in log order (sequences strictly increasing).
    var records: [LogRecord] = []
    /// The byte range of each record's frame, parallel to `records`.
    var frames: [Range<Int>] = []
    /// Damaged ranges followed by an intact record, in log order.
    var damage: [DamagedRange] = []
    /// A damaged range that runs to the end of the file (what a torn append leaves).
    var tail: DamagedRange?

    /// Scans `bytes` (header already checked) from `start`.
    init(_ bytes: [UInt8], from start: Int) {
        var offset = start
        while offset < bytes.count {
            let previous = records.last?.sequence ?? 0
            switch Self.frame(bytes, at: offset, after: previous) {
            case .intact(let record, let end):
                records.append(record)
                frames.append(offset..<end)
                offset = end
            case .bad(let reason):
                var probe = offset + 1
                var next: (offset: Int, sequence: UInt64)?
                while probe + 8 + LogRecord.minimumPayload <= bytes.count {
                    if case .intact(let r, _) = Self.frame(bytes, at: probe, after: previous) {
                        next = (probe, r.sequence)
                        break
                    }
                    probe += 1
                }
                guard let next else {
                    tail = DamagedRange(offset: offset, length: bytes.count - offset, reason: reason, after: previous, before: nil)
                    return
                }
                damage.append(DamagedRange(offset: offset, length: next.offset - offset, reason: reason,
                                           after: previous, before: next.sequence))
                offset = next.offset
            }
        }
    }

    enum Frame {
        case intact(LogRecord, end: Int)
        case bad(String)
    }

    /// The frame at `offset`: intact (checksum good, decodes, sequence above `previous`) or
    /// why not. Never reads outside `bytes`.
    static func frame(_ bytes: [UInt8], at offset: Int, after previous: UInt64) -> Frame {
        let remaining = bytes.count - offset
        guard remaining >= 8 else { return .bad("incomplete frame header: \(remaining) bytes") }
        let length = Int(bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) })
        let stored = bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)) }
        guard length <= LogRecord.maximumPayload else {
            return .bad("frame length \(length) exceeds the limit \(LogRecord.maximumPayload)")
        }
        guard length >= LogRecord.minimumPayload else {
            return .bad("frame length \(length) is below a record's minimum \(LogRecord.minimumPayload)")
        }
        guard length <= remaining - 8 else { return .bad("frame length \(length) but only \(remaining - 8) bytes left") }
        let range = (offset + 8)..<(offset + 8 + length)
        let actual = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[range])) }
        guard actual == stored else { return .bad("checksum mismatch: stored \(hex(stored)), computed \(hex(actual))") }
        let record: LogRecord
        do { record = try LogRecord.decode(bytes, range: range) } catch { return .bad("undecodable record: \(error)") }
        guard record.sequence > previous else { return .bad("sequence \(record.sequence), expected more than \(previous)") }
        return .intact(record, end: range.upperBound)
    }
}
