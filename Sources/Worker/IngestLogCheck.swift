// A read-only look at a fact log before the repository opens it, to tell a torn append
// from damage in the middle. Recovery (Storage, Durability.swift) cuts the log at the first
// bad frame and keeps the rest aside: right for a torn tail, which only an unacknowledged
// append can leave, but for a flipped byte in the middle it would take every acknowledged
// record after it out of the repository. So `recipe ingest` refuses to open a log in which
// an intact frame follows a damaged one, unless the operator accepts the cut.
// Frame layout (FactLog.swift): 16-byte header, then [u32 length][u32 CRC-32C][payload].
import Posix

public struct IngestLogCheck: Sendable, Equatable {
    /// Byte offset of the first damaged frame, nil when the log is intact.
    public let damagedOffset: Int?
    /// Index (from 1) of the record at `damagedOffset`.
    public let damagedRecord: Int
    /// Why that frame is bad.
    public let reason: String
    /// Offset of the first intact frame after the damage (nil: the damage runs to the end,
    /// which is what a torn append looks like).
    public let intactAfter: Int?
    /// Intact frames found after the damage (a lower bound of the records recovery would cut).
    public let intactFramesAfter: Int

    /// True when recovery would cut records that are intact (damage in the middle).
    public var damagedInTheMiddle: Bool { intactAfter != nil }

    static let headerSize = 16
    static let maximumPayload = 1 << 20
    /// The smallest payload of a record: kind (1) + sequence, time step, wall time (3 x 8).
    static let minimumPayload = 25

    /// Checks the log at `path`; a missing or header-less file counts as intact (the
    /// repository reports those itself).
    public static func check(path: String) throws -> IngestLogCheck {
        guard FileSystem.exists(path) else { return IngestLogCheck(damagedOffset: nil, damagedRecord: 0, reason: "", intactAfter: nil, intactFramesAfter: 0) }
        let bytes = try FileSystem.readFile(path)
        return check(bytes: bytes)
    }

    public static func check(bytes: [UInt8]) -> IngestLogCheck {
        var offset = headerSize
        var record = 0
        while offset < bytes.count {
            record += 1
            if let why = frameProblem(bytes, at: offset) {
                // Look for any intact frame further on (the damaged length field may be
                // wrong, so scan byte by byte).
                var probe = offset + 1
                var firstIntact: Int?
                var intact = 0
                while probe + 8 + minimumPayload <= bytes.count {
                    if frameProblem(bytes, at: probe) == nil {
                        if firstIntact == nil { firstIntact = probe }
                        intact += 1
                        probe += 8 + length(bytes, probe)
                    } else {
                        probe += 1
                    }
                }
                return IngestLogCheck(damagedOffset: offset, damagedRecord: record, reason: why, intactAfter: firstIntact,
                                      intactFramesAfter: intact)
            }
            offset += 8 + length(bytes, offset)
        }
        return IngestLogCheck(damagedOffset: nil, damagedRecord: record, reason: "", intactAfter: nil, intactFramesAfter: 0)
    }

    private static func length(_ b: [UInt8], _ at: Int) -> Int {
        Int(b[at]) | Int(b[at + 1]) << 8 | Int(b[at + 2]) << 16 | Int(b[at + 3]) << 24
    }

    /// Why the frame at `at` is not intact, nil when it is.
    private static func frameProblem(_ b: [UInt8], at: Int) -> String? {
        guard b.count - at >= 8 else { return "incomplete frame header: \(b.count - at) bytes" }
        let n = length(b, at)
        guard n <= maximumPayload else { return "frame length \(n) exceeds the limit \(maximumPayload)" }
        guard n >= minimumPayload else { return "frame length \(n) is below a record's minimum \(minimumPayload)" }
        guard n <= b.count - at - 8 else { return "frame length \(n) but only \(b.count - at - 8) bytes left" }
        let stored = UInt32(b[at + 4]) | UInt32(b[at + 5]) << 8 | UInt32(b[at + 6]) << 16 | UInt32(b[at + 7]) << 24
        let actual = b.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[(at + 8)..<(at + 8 + n)])) }
        guard actual == stored else { return "checksum mismatch at record payload" }
        return nil
    }
}
