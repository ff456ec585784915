// Compaction: a new generation of the matrices without dead rows, rows copied (not
// re-encoded) in their old order, committed by the manifest replace. Readers holding a
// snapshot of the old generation keep their mappings; new snapshots see the new one.
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

    /// A snapshot of the writer's current state (under the writer mutex).
    private func snapshotNow() -> RepositorySnapshot {
        RepositorySnapshot(rowCount: rowCount, keyDimension: encoder.keyDimension, promptRows: encoder.promptRows,
                           promptWidth: encoder.promptWidth, timeStep: timeStep, generation: manifest.generation,
                           keys: keys.region, prompts: prompts.region, rowMap: rowMap.region,
                           live: rowLive, catalog: catalog)
    }
}
