// Compaction: a new generation of the matrices without dead rows, rows copied (not
// re-encoded) in their old order, committed by the manifest replace. Readers holding a
// snapshot of the old generation keep their mappings; new snapshots see the new one.
import Posix

extension Repository {
    public func compact() throws -> CompactionReport {
        try mutex.withLock {
            guard !closed else { throw StorageError.closed(path: path) }
            if let cause = log.poisoned { throw StorageError.needsReopen(path: logPath, cause: cause) }
            let before = rowCount
            let old = snapshotNow()
            let liveRows = (1..<rowCount).filter { rowLive[$0] }
            let rowOfSequence = Dictionary(uniqueKeysWithValues: rowOf.map { ($1, $0) })
            let sequences = liveRows.map { rowOfSequence[$0]! }
            let R = encoder.keyDimension, PC = encoder.promptRowFloats
            let lookup = Dictionary(uniqueKeysWithValues: zip(sequences, liveRows))
            try buildGeneration(manifest.generation + 1, sequences: sequences, progress: nil) { batch in
                var k: [Float] = [], p: [Float] = []
                k.reserveCapacity(batch.count * R)
                p.reserveCapacity(batch.count * PC)
                for seq in batch {
                    k += old.key(row: lookup[seq]!)
                    p += old.prompt(row: lookup[seq]!)
                }
                return (k, p)
            }
            publish()
            return CompactionReport(rowsBefore: before, rowsAfter: rowCount, generation: manifest.generation)
        }
    }

    /// Compacts the matrices when at least `minimumDeadRows` rows are dead and they are at
    /// least `deadFraction` of the fact rows; nil when not needed. For the worker to call
    /// between time steps.
    public func compactIfNeeded(minimumDeadRows: Int = 1024, deadFraction: Double = 0.25) throws -> CompactionReport? {
        let s = stats
        guard s.deadRows >= minimumDeadRows, Double(s.deadRows) >= deadFraction * Double(max(1, s.rows - 1)) else { return nil }
        return try compact()
    }

    /// Log compaction: the log is rewritten to hold only the add records of live facts
    /// (with their original sequences, time steps, wall times and sources) and, when
    /// needed, a checkpoint record so that sequences never go back. Retracted and
    /// superseded facts and the retraction records leave the log; the old log is kept as
    /// `facts.log.<last sequence>.archive` unless `keepArchive` is false. Dead matrix rows
    /// are compacted first (rows must only name facts of the log). Bounded log size and
    /// open time for long-running repositories; the history is in the archive.
    public func compactLog(keepArchive: Bool = true) throws -> LogCompactionReport {
        if stats.deadRows > 0 { _ = try compact() }
        return try mutex.withLock {
            guard !closed else { throw StorageError.closed(path: path) }
            if let cause = log.poisoned { throw StorageError.needsReopen(path: logPath, cause: cause) }
            if stepsSinceSync > 0 {
                let warnings = syncAndRecord()
                guard warnings.isEmpty else { throw StorageError.needsReopen(path: manifestPath, cause: warnings.joined(separator: "; ")) }
                stepsSinceSync = 0
            }
            let live = table.facts.values.filter(\.live).sorted { $0.sequence < $1.sequence }
            var records = live.map { LogRecord(sequence: $0.sequence, timeStep: $0.timeStep, wallTime: $0.wallTime, body: .add($0.fact)) }
            if (records.last?.sequence ?? 0) < log.lastSequence {
                records.append(LogRecord(sequence: log.lastSequence, timeStep: timeStep, wallTime: wallClockMilliseconds(), body: .checkpoint))
            }
            let before = (records: log.recordCount, bytes: log.endOffset)
            var archive: String?
            if keepArchive {
                var name = logPath + ".\(log.lastSequence).archive"
                var n = 1
                while FileSystem.exists(name) { name = logPath + ".\(log.lastSequence).\(n).archive"; n += 1 }
                archive = name
            }
            try log.rewrite(records, archive: archive)
            var rebuilt = FactTable()
            rebuilt.reserve(records.count)
            for r in records { _ = rebuilt.apply(r) }
            table = rebuilt
            return LogCompactionReport(recordsBefore: before.records, recordsAfter: records.count, bytesBefore: before.bytes,
                                       bytesAfter: log.endOffset, archive: archive)
        }
    }
}
