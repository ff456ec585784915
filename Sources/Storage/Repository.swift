// The knowledge repository: one directory holding the fact log and the mapped key and
// prompt matrices derived from it. Follows Durability.swift to the letter.
// One writer (flock on LOCK, and a mutex inside the process); any number of readers
// through `snapshot()`.
//
//     let repo = try Repository(path: dir, encoder: encoder) { p in print(p.done, p.total) }
//     let report = try repo.commit([.add(statement: "Paris is in France"), .retractID("f1")])
//     // returned: durable (log fsynced). report.outcomes: added / superseded / duplicate ...
//     let hit = try repo.snapshot().search(queryKey, k: 1, scale: 1 / sqrt(Float(R)))
//     if let best = hit.hits.first { let prompt = repo.snapshot().prompt(row: best.row) }  // [P*C]
//     _ = try repo.compact()   // drop dead rows; readers keep their snapshots
//     try repo.close()
import Foundation
import Glibc
import Posix

public struct RepositoryOptions: Sendable {
    /// Longest statement, prompt, target, subject or id accepted, in UTF-8 bytes.
    public var maximumTextBytes = 64 * 1024
    /// Facts per `encode` call when rebuilding or replaying at open.
    public var rebuildBatchSize = 512
    /// Time steps between msync of the matrices + manifest replace. 1 (the default) does
    /// both at every step. SPEED OPTION: with N > 1 a crash costs re-encoding the facts of
    /// up to N-1 steps at the next open (their rows are re-derived from the log); no
    /// acknowledged fact is lost, because the log is still fsynced at every step.
    public var syncMatricesEvery = 1
    /// Rows searched (dead rows included, sentinel excluded) from which retrieval runs in
    /// two stages: the int8 copy of the keys (`QuantizedKeys`, kept in memory, built at
    /// open) is scanned for candidates, which are rescored exactly, so scores and the
    /// sentinel rule stay exact while the top k can differ from exact search when a true
    /// best row is not among the candidates (`recipe bench retrieval` reports the recall).
    /// nil: always the exact f32 scan, and no int8 copy is kept (saves R + 4 bytes of
    /// memory per row).
    public var twoStageSearchRows: Int? = 16_384
    /// Rows rescored exactly per query by two-stage search (at least the k asked for).
    public var twoStageCandidates = 64
    /// Opens a fact log damaged in the middle by salvaging it (every intact record kept,
    /// damaged ranges saved in torn/) instead of refusing with `StorageError.damagedLog`.
    /// Off by default: an operator decides (`recipe repair`), after taking a backup.
    public var salvageDamagedLog = false
    public init() {}
}

public final class Repository: @unchecked Sendable {
    public let path: String
    public let encoder: any FactEncoder
    public let options: RepositoryOptions
    /// What the last open found and repaired.
    public internal(set) var openReport = OpenReport()

    let lockFile: FileDescriptor
    let mutex = NSLock()
    let snapshotLock = NSLock()
    var published: RepositorySnapshot!

    var log: FactLog!
    var table = FactTable()
    /// The manifest as last written (the durable state of the matrices).
    var manifest: Manifest!
    var keys: MatrixFile!
    var prompts: MatrixFile!
    var rowMap: MatrixFile!
    /// The int8 copy of `keys` rows 0..<rowCount (nil when two-stage search is off).
    var codes: QuantizedKeys?
    /// Rows in use (sentinel included); ahead of `manifest.rowCount` when a msync failed.
    var rowCount = 1
    var rowLive: [Bool] = [false]
    var rowOf: [UInt64: Int] = [:]
    var timeStep: UInt64 = 0
    /// First row not yet known to be msynced.
    var unsyncedFrom = 1
    let catalog = FactCatalog()
    var closed = false
    /// Steps committed since the matrices were last msynced and the manifest written.
    var stepsSinceSync = 0

    var logPath: String { path + "/facts.log" }
    var manifestPath: String { path + "/MANIFEST" }
    var tornDirectory: String { path + "/torn" }
    func matrixPath(_ name: String, _ generation: UInt64) -> String { path + "/\(name).\(generation)" + (name == "rows" ? ".u64" : ".f32") }

    /// Opens (creating if needed) the repository in directory `path`, recovering as
    /// Durability.swift describes. `progress` is called while facts are re-encoded.
    public init(path: String, encoder: any FactEncoder, options: RepositoryOptions = RepositoryOptions(),
                progress: ((RebuildProgress) -> Void)? = nil) throws {
        self.path = path
        self.encoder = encoder
        self.options = options
        for (what, n) in [("key dimension", encoder.keyDimension), ("prompt rows", encoder.promptRows),
                          ("prompt width", encoder.promptWidth)] where n <= 0 {
            throw StorageError.encoderShape(what: what, expected: 1, actual: n)
        }
        let created = !FileSystem.exists(path)
        try posix {
            try FileSystem.makeDirectory(path)
            // A new repository directory must itself survive a crash.
            if created { try FileSystem.syncDirectory(FileSystem.parent(of: path)) }
        }
        lockFile = try posix { try FileDescriptor.open(path + "/LOCK", O_RDWR | O_CREAT, mode: 0o644) }
        guard try posix({ try lockFile.tryLockExclusive() }) else { throw StorageError.locked(path: path) }
        try recover(progress: progress)
    }

    deinit { try? close() }

    /// The view of the last committed time step. Cheap; hold it as long as needed.
    public func snapshot() -> RepositorySnapshot {
        snapshotLock.lock()
        defer { snapshotLock.unlock() }
        return published
    }

    /// Live facts (sentinel excluded).
    public var liveCount: Int { mutex.withLock { table.liveCount } }

    /// The last committed time step (0 before the first).
    public var currentTimeStep: UInt64 { mutex.withLock { timeStep } }

    /// Counters for `stats` requests and logs.
    public var stats: RepositoryStats {
        mutex.withLock {
            RepositoryStats(liveFacts: table.liveCount, rows: rowCount, deadRows: rowLive.dropFirst().lazy.filter { !$0 }.count,
                            timeStep: timeStep, generation: manifest?.generation ?? 0, logRecords: log?.lastSequence ?? 0,
                            logBytes: log?.endOffset ?? 0, keyDimension: encoder.keyDimension,
                            promptRows: encoder.promptRows, promptWidth: encoder.promptWidth,
                            fingerprint: encoder.fingerprint)
        }
    }

    /// The live fact with this id.
    public func fact(id: String) -> Fact? {
        mutex.withLock { table.liveByID[id].flatMap { table.facts[$0]?.fact } }
    }

    /// Runs one time step: plans, encodes, logs + fsyncs (acknowledgement), writes rows,
    /// msyncs, replaces the manifest, publishes the snapshot. Throws only when nothing of
    /// the batch is acknowledged.
    public func commit(_ operations: [FactOperation]) throws -> CommitReport {
        try mutex.withLock {
            guard !closed else { throw StorageError.closed(path: path) }
            if let cause = log.poisoned { throw StorageError.needsReopen(path: logPath, cause: cause) }
            var encoded: ([Float], [Float]) = ([], [])
            let step = timeStep + 1
            // Planning mutates the table under an undo journal; anything that fails before
            // the log fsync rolls it back, so a refused step leaves no trace in memory.
            table.beginJournal()
            let (records, outcomes) = table.plan(operations, firstSequence: log.lastSequence + 1, timeStep: step,
                                                 wallTime: wallClockMilliseconds(), maximumText: options.maximumTextBytes)
            guard !records.isEmpty else {
                table.endJournal()
                return CommitReport(timeStep: timeStep, outcomes: outcomes, sequences: nil, rowsWritten: 0, warnings: [])
            }
            // Facts added in this step and still live need rows.
            let newFacts: [(UInt64, Fact)] = records.compactMap { r in
                if case .add(let f) = r.body, table.facts[r.sequence]?.live == true { return (r.sequence, f) }
                return nil
            }
            do {
                let (k, p) = try encodeChecked(newFacts.map { $0.1 })
                let needed = rowCount + newFacts.count
                try keys.ensureCapacity(needed)
                try prompts.ensureCapacity(needed)
                try rowMap.ensureCapacity(needed)
                try log.append(records)  // acknowledgement point
                table.endJournal()
                encoded = (k, p)
            } catch {
                table.rollback()
                throw error
            }
            let (k, p) = encoded
            timeStep = step
            catalog.add(records.compactMap { r in if case .add(let f) = r.body { return (r.sequence, f) } else { return nil } })
            writeRows(newFacts.map { $0.0 }, keys: k, prompts: p)
            for r in records {
                switch r.body {
                case .retract(let target, _, _): markDead(target)
                case .supersede(let old, _, _, _): markDead(old)
                case .add, .checkpoint: break
                }
            }
            stepsSinceSync += 1
            var warnings: [String] = []
            if stepsSinceSync >= options.syncMatricesEvery {
                warnings = syncAndRecord()
                if warnings.isEmpty { stepsSinceSync = 0 }
            }
            publish()
            return CommitReport(timeStep: step, outcomes: outcomes, sequences: records.first!.sequence...records.last!.sequence,
                                rowsWritten: newFacts.count, warnings: warnings)
        }
    }

    /// msyncs the matrices and replaces the manifest now (see `syncMatricesEvery`);
    /// returns the failures.
    public func flush() -> [String] {
        mutex.withLock {
            guard !closed, stepsSinceSync > 0 else { return [] }
            let warnings = syncAndRecord()
            if warnings.isEmpty { stepsSinceSync = 0 }
            return warnings
        }
    }

    /// Releases the files and the lock. Readers' snapshots stay valid.
    public func close() throws {
        try mutex.withLock {
            guard !closed else { return }
            closed = true
            if stepsSinceSync > 0, log?.poisoned == nil, manifest != nil { _ = syncAndRecord() }
            try log?.close()
            try keys?.close()
            try prompts?.close()
            try rowMap?.close()
            try posix { try lockFile.unlock(); try lockFile.close() }
        }
    }

    // MARK: - shared by commit, recovery and compaction

    /// Calls the encoder once and checks the shapes it returned.
    func encodeChecked(_ facts: [Fact]) throws -> ([Float], [Float]) {
        guard !facts.isEmpty else { return ([], []) }
        let out: (keys: [Float], prompts: [Float])
        do { out = try encoder.encode(facts: facts) } catch { throw StorageError.encoderFailed("\(error)") }
        let n = facts.count
        guard out.keys.count == n * encoder.keyDimension else {
            throw StorageError.encoderShape(what: "keys", expected: n * encoder.keyDimension, actual: out.keys.count)
        }
        guard out.prompts.count == n * encoder.promptRowFloats else {
            throw StorageError.encoderShape(what: "prompts", expected: n * encoder.promptRowFloats, actual: out.prompts.count)
        }
        return (out.keys, out.prompts)
    }

    /// Appends rows for `sequences` (keys [N, R], prompts [N, P*C]) at `rowCount`.
    func writeRows(_ sequences: [UInt64], keys k: [Float], prompts p: [Float]) {
        let R = encoder.keyDimension, PC = encoder.promptRowFloats
        guard !sequences.isEmpty else { return }
        k.withUnsafeBufferPointer { codes?.append($0.baseAddress!, rows: sequences.count) }
        for (i, seq) in sequences.enumerated() {
            let row = rowCount + i
            k.withUnsafeBytes { keys.row(row).copyMemory(from: $0.baseAddress! + i * R * 4, byteCount: R * 4) }
            p.withUnsafeBytes { prompts.row(row).copyMemory(from: $0.baseAddress! + i * PC * 4, byteCount: PC * 4) }
            rowMap.row(row).storeBytes(of: seq, as: UInt64.self)
            rowOf[seq] = row
            rowLive.append(true)
        }
        rowCount += sequences.count
    }

    func markDead(_ sequence: UInt64) {
        if let row = rowOf[sequence] { rowLive[row] = false }
    }

    /// Steps 6 and 7: msync what is not yet synced, then (only then) the manifest.
    /// Returns the failures as warnings.
    func syncAndRecord() -> [String] {
        do {
            try keys.sync(rows: unsyncedFrom..<rowCount)
            try prompts.sync(rows: unsyncedFrom..<rowCount)
            try rowMap.sync(rows: unsyncedFrom..<rowCount)
            unsyncedFrom = rowCount
        } catch {
            return ["msync failed, manifest left at record \(manifest.appliedSequence): \(error)"]
        }
        var m = manifest!
        m.rowCount = rowCount
        m.appliedSequence = log.lastSequence
        m.timeStep = timeStep
        do {
            try m.write(to: manifestPath)
            manifest = m
        } catch {
            return ["manifest not replaced, left at record \(manifest.appliedSequence): \(error)"]
        }
        return []
    }

    /// A new, empty int8 copy of the keys, or nil when two-stage search is off.
    func newCodes() -> QuantizedKeys? {
        options.twoStageSearchRows == nil ? nil : QuantizedKeys(dimension: encoder.keyDimension)
    }

    /// A snapshot of the writer's current state (under the writer mutex).
    func snapshotNow() -> RepositorySnapshot {
        RepositorySnapshot(rowCount: rowCount, keyDimension: encoder.keyDimension, promptRows: encoder.promptRows,
                           promptWidth: encoder.promptWidth, timeStep: timeStep, generation: manifest.generation,
                           keys: keys.region, prompts: prompts.region, rowMap: rowMap.region,
                           live: rowLive, catalog: catalog, codes: codes?.view,
                           twoStageRows: options.twoStageSearchRows ?? Int.max, candidates: options.twoStageCandidates)
    }

    func publish() {
        let s = snapshotNow()
        snapshotLock.withLock { published = s }
    }
}
