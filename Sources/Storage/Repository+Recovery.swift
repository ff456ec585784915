// Opening a repository: replay the log, verify the manifest and the matrix files, apply
// what the matrices miss, or rebuild a whole generation from the log. See the recovery
// rules in Durability.swift.
import Glibc
import Posix

/// What `Repository.repairLog` found and did.
public struct LogRepairReport: Sendable {
    /// Set when the log was damaged in the middle and has been salvaged.
    public let salvage: LogSalvage?
    /// Set when only the tail was damaged (a torn append): cut and kept aside, as at open.
    public let tornTail: TornTail?
    /// Intact records in the log now.
    public let records: Int
}

extension Repository {
    /// Salvages the fact log of the repository in `path` without opening the rest (no
    /// encoder needed), under the writer lock: every intact record is kept, each damaged
    /// range is saved in `torn/`, the damaged log is kept beside the new one. The next open
    /// marks the rows of lost records dead and keeps every other row.
    public static func repairLog(path: String) throws -> LogRepairReport {
        guard FileSystem.exists(path + "/facts.log") else {
            throw StorageError.system(PosixError(call: "open", path: path + "/facts.log", errno: .noEntry))
        }
        let lock = try posix { try FileDescriptor.open(path + "/LOCK", O_RDWR | O_CREAT, mode: 0o644) }
        defer { try? lock.close() }
        guard try posix({ try lock.tryLockExclusive() }) else { throw StorageError.locked(path: path) }
        let (log, records, torn, salvage) = try FactLog.open(path: path + "/facts.log", tornDirectory: path + "/torn", salvage: true)
        try log.close()
        return LogRepairReport(salvage: salvage, tornTail: torn, records: records.count)
    }

    func recover(progress: ((RebuildProgress) -> Void)?) throws {
        var report = OpenReport()
        let (log, records, torn, salvage) = try FactLog.open(path: logPath, tornDirectory: tornDirectory,
                                                             salvage: options.salvageDamagedLog)
        self.log = log
        report.tornTail = torn
        report.salvage = salvage
        report.recordsReplayed = records.count
        table.reserve(records.count)
        for r in records {
            if let why = table.apply(r) { report.skippedRecords.append("\(logPath): record \(r.sequence): \(why)") }
        }
        timeStep = records.last?.timeStep ?? 0
        catalog.add(records.compactMap { r in if case .add(let f) = r.body { return (r.sequence, f) } else { return nil } })

        var reason: String?
        var found: Manifest?
        do { found = try Manifest.read(from: manifestPath) } catch { reason = "\(error)" }
        if let m = found {
            reason = adopt(m)
        } else if reason == nil {
            reason = records.isEmpty ? "new repository" : "no manifest"
        }

        if let reason {
            report.rebuilt = reason
            let generation = max(found?.generation ?? 0, existingGenerations().max() ?? 0) + 1
            let live = table.facts.values.filter(\.live).map(\.sequence).sorted()
            try buildGeneration(generation, sequences: live, progress: progress) { batch in
                try self.encodeChecked(batch.map { self.table.facts[$0]!.fact })
            }
        } else {
            try repairSentinel()
            let pending = table.facts.values.filter { $0.live && rowOf[$0.sequence] == nil }.map(\.sequence).sorted()
            var done = 0
            if !pending.isEmpty { progress?(RebuildProgress(done: 0, total: pending.count)) }
            for start in stride(from: 0, to: pending.count, by: options.rebuildBatchSize) {
                let batch = Array(pending[start..<min(pending.count, start + options.rebuildBatchSize)])
                let (k, p) = try encodeChecked(batch.map { table.facts[$0]!.fact })
                for file in [keys!, prompts!, rowMap!] { try file.ensureCapacity(rowCount + batch.count) }
                writeRows(batch, keys: k, prompts: p)
                done += batch.count
                progress?(RebuildProgress(done: done, total: pending.count))
            }
            report.rowsApplied = pending.count
            if manifest.appliedSequence != log.lastSequence || manifest.rowCount != rowCount || manifest.timeStep != timeStep {
                report.warnings += syncAndRecord()
            }
        }
        report.warnings += removeStaleFiles()
        report.liveFacts = table.liveCount
        openReport = report
        publish()
    }

    /// Checks `m` against the encoder, the log and the matrix files; on success takes them
    /// over and returns nil, else returns why the generation must be rebuilt.
    private func adopt(_ m: Manifest) -> String? {
        if m.fingerprint != encoder.fingerprint {
            return "encoder fingerprint changed: manifest \"\(m.fingerprint)\", encoder \"\(encoder.fingerprint)\""
        }
        if m.keyDimension != encoder.keyDimension || m.promptRows != encoder.promptRows || m.promptWidth != encoder.promptWidth {
            return "dimensions changed: manifest R=\(m.keyDimension) P=\(m.promptRows) C=\(m.promptWidth), encoder R=\(encoder.keyDimension) P=\(encoder.promptRows) C=\(encoder.promptWidth)"
        }
        if m.appliedSequence > log.lastSequence {
            return "\(manifestPath): applied record \(m.appliedSequence) but the log ends at record \(log.lastSequence)"
        }
        guard m.rowCount >= 1 else { return "\(manifestPath): row count \(m.rowCount)" }
        let k: MatrixFile, p: MatrixFile, r: MatrixFile
        do {
            k = try MatrixFile.open(path: matrixPath("keys", m.generation), kind: .float32, width: m.keyDimension,
                                    generation: m.generation, rows: m.rowCount)
            p = try MatrixFile.open(path: matrixPath("prompts", m.generation), kind: .float32,
                                    width: m.promptRows * m.promptWidth, generation: m.generation, rows: m.rowCount)
            r = try MatrixFile.open(path: matrixPath("rows", m.generation), kind: .uint64, width: 1,
                                    generation: m.generation, rows: m.rowCount)
        } catch {
            return "\(error)"
        }
        var seen: [UInt64: Int] = [:]
        var live = [false]
        for row in 1..<m.rowCount {
            let seq = r.row(row).load(as: UInt64.self)
            guard seq >= 1, seq <= m.appliedSequence, seen[seq] == nil else {
                return "\(r.path): row \(row) names record \(seq), which is not an applied fact of the log"
            }
            seen[seq] = row
            // A record missing from the log (salvaged out of a damaged log) leaves a dead
            // row. A row map naming a wrong record is still caught: the live fact whose row
            // it was would have none (checked below).
            live.append(table.facts[seq]?.live ?? false)
        }
        for f in table.facts.values where f.live && f.sequence <= m.appliedSequence && seen[f.sequence] == nil {
            return "\(r.path): live fact \(f.fact.id) (record \(f.sequence)) has no row"
        }
        codes = newCodes()
        codes?.append(UnsafePointer(k.row(0).assumingMemoryBound(to: Float.self)), rows: m.rowCount)
        keys = k
        prompts = p
        rowMap = r
        manifest = m
        rowCount = m.rowCount
        rowLive = live
        rowOf = seen
        unsyncedFrom = m.rowCount
        return nil
    }

    /// Row 0 must hold the encoder's sentinel; rewrites and msyncs it when it does not.
    private func repairSentinel() throws {
        let s = encoder.sentinel()
        let R = encoder.keyDimension, PC = encoder.promptRowFloats
        guard s.key.count == R else { throw StorageError.encoderShape(what: "sentinel key", expected: R, actual: s.key.count) }
        guard s.prompt.count == PC else { throw StorageError.encoderShape(what: "sentinel prompt", expected: PC, actual: s.prompt.count) }
        let same = s.key.withUnsafeBytes { memcmp($0.baseAddress!, keys.row(0), R * 4) == 0 }
            && s.prompt.withUnsafeBytes { memcmp($0.baseAddress!, prompts.row(0), PC * 4) == 0 }
        if same { return }
        s.key.withUnsafeBytes { keys.row(0).copyMemory(from: $0.baseAddress!, byteCount: R * 4) }
        s.prompt.withUnsafeBytes { prompts.row(0).copyMemory(from: $0.baseAddress!, byteCount: PC * 4) }
        s.key.withUnsafeBufferPointer { codes?.replace(row: 0, from: $0.baseAddress!) }
        try keys.sync(rows: 0..<1)
        try prompts.sync(rows: 0..<1)
    }

    /// Writes generation `generation` holding the sentinel and the facts `sequences` (in
    /// that row order), with rows from `fill` (keys [N, R], prompts [N, P*C] per batch);
    /// msync + fsync, directory fsync, manifest (the commit point), then drops the old files.
    func buildGeneration(_ generation: UInt64, sequences: [UInt64], progress: ((RebuildProgress) -> Void)?,
                         fill: (ArraySlice<UInt64>) throws -> ([Float], [Float])) throws {
        let R = encoder.keyDimension, PC = encoder.promptRowFloats
        let n = sequences.count + 1
        let k = try MatrixFile.create(path: matrixPath("keys", generation), kind: .float32, width: R,
                                      generation: generation, capacity: n)
        let p = try MatrixFile.create(path: matrixPath("prompts", generation), kind: .float32, width: PC,
                                      generation: generation, capacity: n)
        let r = try MatrixFile.create(path: matrixPath("rows", generation), kind: .uint64, width: 1,
                                      generation: generation, capacity: n)
        let s = encoder.sentinel()
        guard s.key.count == R else { throw StorageError.encoderShape(what: "sentinel key", expected: R, actual: s.key.count) }
        guard s.prompt.count == PC else { throw StorageError.encoderShape(what: "sentinel prompt", expected: PC, actual: s.prompt.count) }
        s.key.withUnsafeBytes { k.row(0).copyMemory(from: $0.baseAddress!, byteCount: R * 4) }
        s.prompt.withUnsafeBytes { p.row(0).copyMemory(from: $0.baseAddress!, byteCount: PC * 4) }
        r.row(0).storeBytes(of: UInt64(0), as: UInt64.self)
        let c = newCodes()
        s.key.withUnsafeBufferPointer { c?.append($0.baseAddress!, rows: 1) }
        var row = 1
        var newRowOf: [UInt64: Int] = [:]
        progress?(RebuildProgress(done: 0, total: sequences.count))  // one batch may take minutes (prompt refinement)
        for start in stride(from: 0, to: sequences.count, by: options.rebuildBatchSize) {
            let batch = sequences[start..<min(sequences.count, start + options.rebuildBatchSize)]
            let (bk, bp) = try fill(batch)
            guard bk.count == batch.count * R, bp.count == batch.count * PC else {
                throw StorageError.encoderShape(what: "rows", expected: batch.count * (R + PC), actual: bk.count + bp.count)
            }
            bk.withUnsafeBytes { k.row(row).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            bp.withUnsafeBytes { p.row(row).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            bk.withUnsafeBufferPointer { if !batch.isEmpty { c?.append($0.baseAddress!, rows: batch.count) } }
            for seq in batch {
                r.row(row).storeBytes(of: seq, as: UInt64.self)
                newRowOf[seq] = row
                row += 1
            }
            progress?(RebuildProgress(done: row - 1, total: sequences.count))
        }
        for file in [k, p, r] {
            try file.sync(rows: 0..<n)
            try file.syncFile()
        }
        try posix { try FileSystem.syncDirectory(path) }
        let m = Manifest(fingerprint: encoder.fingerprint, keyDimension: R, promptRows: encoder.promptRows,
                         promptWidth: encoder.promptWidth, generation: generation, rowCount: n,
                         appliedSequence: log.lastSequence, timeStep: timeStep)
        try m.write(to: manifestPath)  // commit point of the new generation

        let old = [keys, prompts, rowMap].compactMap { $0 }
        keys = k
        prompts = p
        rowMap = r
        codes = c
        manifest = m
        rowCount = n
        rowLive = [false] + [Bool](repeating: true, count: sequences.count)
        for seq in sequences where table.facts[seq]?.live != true { rowLive[newRowOf[seq]!] = false }
        rowOf = newRowOf
        unsyncedFrom = n
        for file in old { try? file.close() }
        _ = removeStaleFiles()
    }

    /// Generations present in the directory, from the matrix file names.
    func existingGenerations() -> [UInt64] {
        ((try? FileSystem.list(path)) ?? []).compactMap { name in
            let parts = name.split(separator: ".")
            guard parts.count == 3, ["keys", "prompts", "rows"].contains(parts[0]) else { return nil }
            return UInt64(parts[1])
        }
    }

    /// Unlinks matrix files of other generations and a leftover MANIFEST.tmp.
    func removeStaleFiles() -> [String] {
        var warnings: [String] = []
        var removed = false
        for name in (try? FileSystem.list(path)) ?? [] {
            let parts = name.split(separator: ".")
            let stale = name == "MANIFEST.tmp"
                || (parts.count == 3 && ["keys", "prompts", "rows"].contains(parts[0]) && UInt64(parts[1]) != manifest?.generation)
            guard stale else { continue }
            do { try FileSystem.unlink(path + "/" + name); removed = true } catch { warnings.append("\(error)") }
        }
        if removed { do { try FileSystem.syncDirectory(path) } catch { warnings.append("\(error)") } }
        return warnings
    }
}
