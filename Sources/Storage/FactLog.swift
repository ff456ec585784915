// The append-only fact log, the repository's source of truth (after etcd's WAL).
// File: 16-byte header ("RCPFLOG1", u32 version, u32 CRC-32C of the first 12 bytes), then
// frames [u32 payload length][u32 CRC-32C(payload)][payload] (see FactRecord.swift).
// A batch is durable once `append` returns: frames are written with a pwrite loop and the
// file is fsynced. Recovery reads frames until the first one that is short, fails its
// checksum, does not decode, or breaks the sequence; everything from there on is copied
// into `torn/` (fsynced), then the log is truncated there and fsynced.
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
    /// and the torn tail it cut, if any (kept in `tornDirectory`).
    static func open(path: String, tornDirectory: String) throws -> (FactLog, [LogRecord], TornTail?) {
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

        var records: [LogRecord] = []
        var offset = headerSize
        var torn: (offset: Int, reason: String)?
        while offset < bytes.count {
            let remaining = bytes.count - offset
            guard remaining >= 8 else { torn = (offset, "incomplete frame header: \(remaining) bytes"); break }
            let length = Int(bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) })
            let stored = bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)) }
            guard length <= LogRecord.maximumPayload else {
                torn = (offset, "frame length \(length) exceeds the limit \(LogRecord.maximumPayload)"); break
            }
            guard length <= remaining - 8 else {
                torn = (offset, "frame length \(length) but only \(remaining - 8) bytes left"); break
            }
            let range = (offset + 8)..<(offset + 8 + length)
            let actual = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[range])) }
            guard actual == stored else {
                torn = (offset, "checksum mismatch: stored \(hex(stored)), computed \(hex(actual))"); break
            }
            let record: LogRecord
            do { record = try LogRecord.decode(bytes, range: range) } catch {
                torn = (offset, "undecodable record: \(error)"); break
            }
            let previous = records.last?.sequence ?? 0
            guard record.sequence > previous else {
                torn = (offset, "sequence \(record.sequence), expected more than \(previous)"); break
            }
            records.append(record)
            offset = range.upperBound
        }

        var tail: TornTail?
        if let torn {
            let saved = try keepAside(bytes[torn.offset...], logPath: path, offset: torn.offset, directory: tornDirectory)
            try posix {
                try fd.truncate(to: torn.offset)
                try fd.sync()
            }
            tail = TornTail(logPath: path, offset: torn.offset, length: bytes.count - torn.offset,
                            record: UInt64(records.count + 1), reason: torn.reason, savedPath: saved)
        }
        let log = FactLog(path: path, fd: fd, endOffset: torn?.offset ?? bytes.count,
                          lastSequence: records.last?.sequence ?? 0)
        log.recordCount = records.count
        return (log, records, tail)
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
            try? FileSystem.unlink(temp)
            throw error
        }
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
