// The append-only fact log, the repository's source of truth (after etcd's WAL).
// File: 16-byte header ("RCPFLOG1", u32 version, u32 CRC-32C of the first 12 bytes), then
// frames [u32 payload length][u32 CRC-32C(payload)][payload] (see FactRecord.swift).
// A batch is durable once `append` returns: frames are written with a pwrite loop and the
// file is fsynced. Recovery reads frames (FactLogScan.swift) until the first one that is
// short, fails its checksum, does not decode, or breaks the sequence. When no intact frame
// follows (a torn append) everything from there on is copied into `torn/` (fsynced), then
// the log is truncated there and fsynced. When intact frames follow (damage to acknowledged
// records) the log is refused untouched, or salvaged on request: every intact record kept.
import Glibc
import Posix

/// A cut log tail: where, why, and where its bytes were kept.
public struct TornTail: Sendable, Equatable {
    public let logPath: String
    /// Byte offset of the first bad frame; the log now ends here.
    public let offset: Int
    public let length: Int
    /// Index (from 1) the first bad record would have had.
    public let record: UInt64
    public let reason: String
    /// The file holding the cut bytes.
    public let savedPath: String
}

/// A log damaged in the middle: a bad frame with intact records after it.
public struct LogDamage: Sendable, Equatable, CustomStringConvertible {
    public let logPath: String
    /// Byte offset of the first bad frame.
    public let offset: Int
    public let reason: String
    /// The sequence of the last intact record before the damage (0: none).
    public let lastIntactRecord: UInt64
    /// Intact records after the first damaged range (what cutting the log would drop).
    public let intactRecordsAfter: Int
    /// Damaged ranges in the whole log (a torn tail counts as one).
    public let damagedRanges: Int

    public var description: String {
        "\(logPath): damaged at byte \(offset), after record \(lastIntactRecord) (\(reason)); "
            + "\(intactRecordsAfter) intact record(s) follow, \(damagedRanges) damaged range(s) in all"
    }
}

/// What salvaging a damaged log did: every intact record kept, each damaged range saved.
public struct LogSalvage: Sendable, Equatable {
    public struct Kept: Sendable, Equatable {
        public let range: DamagedRange
        /// The file in `torn/` holding the range's bytes.
        public let savedPath: String
    }
    public let logPath: String
    /// The damaged log, whole and byte for byte (a hard link taken before the replace).
    public let archivePath: String
    public let recordsKept: Int
    public let damaged: [Kept]
}

final class FactLog {
    static let magic: [UInt8] = Array("RCPFLOG1".utf8)
    static let version: UInt32 = 1
    static let headerSize = 16

    let path: String
    private var fd: FileDescriptor
    private(set) var endOffset: Int
    private(set) var lastSequence: UInt64
    /// Records in the file.
    private(set) var recordCount = 0
    /// Set when an fsync failed: the file's durable contents are unknown.
    private(set) var poisoned: String?

    private init(path: String, fd: FileDescriptor, endOffset: Int, lastSequence: UInt64) {
        self.path = path
        self.fd = fd
        self.endOffset = endOffset
        self.lastSequence = lastSequence
    }

    static func header() -> [UInt8] {
        var w = ByteWriter()
        w.bytes = magic
        w.u32(version)
        w.u32(CRC32C.checksum(w.bytes))
        return w.bytes
    }

    /// Opens (creating when absent) the log at `path`, returns it with every good record,
    /// the torn tail it cut, if any (kept in `tornDirectory`), and what a salvage did.
    /// A log damaged in the middle (intact records after a bad frame) is refused with
    /// `StorageError.damagedLog` and left untouched, unless `salvage` is set.
    static func open(path: String, tornDirectory: String,
                     salvage: Bool = false) throws -> (FactLog, [LogRecord], TornTail?, LogSalvage?) {
        let created = !FileSystem.exists(path)
        let fd = try posix { try FileDescriptor.open(path, O_RDWR | O_CREAT, mode: 0o644) }
        var bytes = try posix { try fd.read(count: fd.size(), at: 0) }
        if bytes.count < headerSize && header().starts(with: bytes) {
            // New, or a crash while the header was being written: nothing was ever logged.
            try posix {
                try fd.truncate(to: 0)
                try fd.writeAll(header(), at: 0)
                try fd.sync()
                if created || bytes.isEmpty { try FileSystem.syncDirectory(FileSystem.parent(of: path)) }
            }
            bytes = header()
        }
        guard bytes.count >= headerSize, Array(bytes[0..<headerSize]) == header() else {
            let found = bytes.prefix(8).map { String($0, radix: 16) }.joined(separator: " ")
            throw StorageError.badHeader(path: path, expected: "RCPFLOG1 version \(version)", actual: found)
        }

        let scan = FactLogScan(bytes, from: headerSize)
        if let first = scan.damage.first {
            guard salvage else {
                throw StorageError.damagedLog(LogDamage(logPath: path, offset: first.offset, reason: first.reason,
                                                        lastIntactRecord: first.after, intactRecordsAfter: scan.records.filter { $0.sequence > first.after }.count,
                                                        damagedRanges: scan.damage.count + (scan.tail == nil ? 0 : 1)))
            }
            return try salvaged(scan, bytes: bytes, fd: fd, path: path, tornDirectory: tornDirectory)
        }
        var tail: TornTail?
        if let torn = scan.tail {
            let saved = try keepAside(bytes[torn.offset...], logPath: path, offset: torn.offset, directory: tornDirectory)
            try posix {
                try fd.truncate(to: torn.offset)
                try fd.sync()
            }
            tail = TornTail(logPath: path, offset: torn.offset, length: torn.length,
                            record: UInt64(scan.records.count + 1), reason: torn.reason, savedPath: saved)
        }
        let log = FactLog(path: path, fd: fd, endOffset: scan.tail?.offset ?? bytes.count,
                          lastSequence: scan.records.last?.sequence ?? 0)
        log.recordCount = scan.records.count
        return (log, scan.records, tail, nil)
    }

    /// Salvages a log damaged in the middle: every damaged range (and a torn tail) is kept
    /// in `torn/`, the damaged log is kept whole as `<log>.<ms>.damaged` (a hard link), and
    /// a log of the intact frames, copied byte for byte, replaces it (temp + fsync + rename +
    /// directory fsync). Sequences are kept, so the gaps name the records that were lost.
    private static func salvaged(_ scan: FactLogScan, bytes: [UInt8], fd: FileDescriptor, path: String,
                                 tornDirectory: String) throws -> (FactLog, [LogRecord], TornTail?, LogSalvage) {
        var kept: [LogSalvage.Kept] = []
        for range in scan.damage + (scan.tail.map { [$0] } ?? []) {
            let saved = try keepAside(bytes[range.offset..<(range.offset + range.length)], logPath: path,
                                      offset: range.offset, directory: tornDirectory)
            kept.append(LogSalvage.Kept(range: range, savedPath: saved))
        }
        var out = header()
        for frame in scan.frames { out += bytes[frame] }
        var archive = path + ".\(wallClockMilliseconds()).damaged"
        while FileSystem.exists(archive) { archive += ".1" }
        let newFD = try replace(path, with: out, archive: archive)
        try? fd.close()
        do { try posix { try FileSystem.syncDirectory(FileSystem.parent(of: path)) } } catch {
            try? newFD.close()
            throw error
        }
        let log = FactLog(path: path, fd: newFD, endOffset: out.count, lastSequence: scan.records.last?.sequence ?? 0)
        log.recordCount = scan.records.count
        let report = LogSalvage(logPath: path, archivePath: archive, recordsKept: scan.records.count, damaged: kept)
        return (log, scan.records, nil, report)
    }

    /// Copies a cut tail into `directory` (temp + fsync + rename + directory fsync) so that
    /// nothing is deleted by recovery; returns the file's path.
    private static func keepAside(_ bytes: ArraySlice<UInt8>, logPath: String, offset: Int, directory: String) throws -> String {
        try posix {
            try FileSystem.makeDirectory(directory)
            try FileSystem.syncDirectory(FileSystem.parent(of: directory))
        }
        var name = directory + "/" + FileSystem.baseName(logPath) + ".\(offset).\(wallClockMilliseconds()).torn"
        var n = 1
        while FileSystem.exists(name) { name += ".\(n)"; n += 1 }
        try posix { try FileSystem.atomicReplace(name, with: Array(bytes)) }
        return name
    }

    /// Appends `records` (their sequences must continue the log) and fsyncs. On a write
    /// error the log is truncated back to where it was and the error thrown (nothing was
    /// acknowledged). On an fsync error the log is poisoned: every later append throws
    /// `needsReopen` until recovery has read what actually reached the disk.
    func append(_ records: [LogRecord]) throws {
        if let poisoned { throw StorageError.needsReopen(path: path, cause: poisoned) }
        guard !records.isEmpty else { return }
        var frames: [UInt8] = []
        var next = lastSequence
        for r in records {
            next += 1
            guard r.sequence == next else {
                throw StorageError.badRecord(path: path, record: r.sequence, offset: endOffset + frames.count,
                                             reason: "sequence \(r.sequence), expected \(next)")
            }
            let p = r.payload()
            guard p.count <= LogRecord.maximumPayload else {
                throw StorageError.tooLarge(what: "record \(r.sequence)", limit: LogRecord.maximumPayload, actual: p.count)
            }
            var w = ByteWriter()
            w.u32(UInt32(p.count))
            w.u32(CRC32C.checksum(p))
            frames += w.bytes
            frames += p
        }
        do {
            try fd.writeAll(frames, at: endOffset)
        } catch let e as PosixError {
            do { try fd.truncate(to: endOffset) } catch {
                poisoned = "write failed (\(e)) and truncating back failed (\(error))"
            }
            throw StorageError.system(e)
        }
        do {
            try fd.sync()
        } catch let e as PosixError {
            poisoned = e.description
            throw StorageError.system(e)
        }
        endOffset += frames.count
        lastSequence = next
        recordCount += records.count
    }

    /// Log compaction: replaces the log by `records` (sequences increasing, the last one
    /// equal to `lastSequence`) atomically: facts.log.tmp written and fsynced, the old log
    /// hard-linked to `archive` when given (kept, not deleted), rename over facts.log,
    /// directory fsync. A crash leaves either the old log or the new one in place.
    func rewrite(_ records: [LogRecord], archive: String?) throws {
        if let poisoned { throw StorageError.needsReopen(path: path, cause: poisoned) }
        guard records.last?.sequence ?? 0 == lastSequence else {
            throw StorageError.badRecord(path: path, record: records.last?.sequence ?? 0, offset: 0,
                                         reason: "a rewritten log must end at record \(lastSequence)")
        }
        var bytes = Self.header()
        var previous: UInt64 = 0
        for r in records {
            guard r.sequence > previous else {
                throw StorageError.badRecord(path: path, record: r.sequence, offset: bytes.count, reason: "sequence not increasing")
            }
            previous = r.sequence
            let p = r.payload()
            var w = ByteWriter()
            w.u32(UInt32(p.count))
            w.u32(CRC32C.checksum(p))
            bytes += w.bytes
            bytes += p
        }
        let out = try Self.replace(path, with: bytes, archive: archive)
        // From the rename on, appends must go to the new file, whatever happens next.
        try? fd.close()
        fd = out
        endOffset = bytes.count
        recordCount = records.count
        do {
            try FileSystem.syncDirectory(FileSystem.parent(of: path))
        } catch let e as PosixError {
            poisoned = "directory fsync after the log rewrite failed: \(e)"
            throw StorageError.system(e)
        }
    }

    /// Writes `bytes` to `<path>.tmp` and fsyncs it, hard-links the current log to `archive`
    /// (kept byte for byte) when given, and renames the new file over the log; returns the
    /// new file's descriptor. On failure the temp file is removed and the log is as it was.
    /// The caller fsyncs the directory.
    private static func replace(_ path: String, with bytes: [UInt8], archive: String?) throws -> FileDescriptor {
        let temp = path + ".tmp"
        let out = try posix { try FileDescriptor.open(temp, O_RDWR | O_CREAT | O_TRUNC, mode: 0o644) }
        do {
            try posix {
                try out.writeAll(bytes, at: 0)
                try out.sync()
                if let archive { try FileSystem.link(path, to: archive) }
                try FileSystem.rename(temp, to: path)
            }
        } catch {
            try? out.close()
            try? FileSystem.unlink(temp)
            throw error
        }
        return out
    }

    func close() throws { try posix { try fd.close() } }
}

func hex(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: max(0, 8 - s.count)) + s
}

func wallClockMilliseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}
