// An immutable view of the repository as of one committed time step: the mapped key,
// prompt and row-map files, the row count and which rows are live. The writer publishes a
// new snapshot at the end of every step and after compaction; a reader that holds one
// keeps its mappings alive (even after compaction unlinks the files) and never sees a
// half-written step, because rows below `rowCount` are never rewritten in place.
import Glibc
import Posix

public final class RepositorySnapshot: @unchecked Sendable {
    /// Rows in use, sentinel (row 0) included.
    public let rowCount: Int
    public let keyDimension: Int
    public let promptRows: Int
    public let promptWidth: Int
    public let timeStep: UInt64
    public let generation: UInt64
    let keys: MappedRegion
    let prompts: MappedRegion
    let rowMap: MappedRegion
    let live: [Bool]
    let catalog: FactCatalog

    init(rowCount: Int, keyDimension: Int, promptRows: Int, promptWidth: Int, timeStep: UInt64,
         generation: UInt64, keys: MappedRegion, prompts: MappedRegion, rowMap: MappedRegion,
         live: [Bool], catalog: FactCatalog) {
        self.rowCount = rowCount
        self.keyDimension = keyDimension
        self.promptRows = promptRows
        self.promptWidth = promptWidth
        self.timeStep = timeStep
        self.generation = generation
        self.keys = keys
        self.prompts = prompts
        self.rowMap = rowMap
        self.live = live
        self.catalog = catalog
    }

    /// Live fact rows (the sentinel excluded).
    public var liveCount: Int { live.dropFirst().lazy.filter { $0 }.count }

    private var keyBase: UnsafePointer<Float> {
        UnsafePointer((keys.base + MatrixFile.headerSize).assumingMemoryBound(to: Float.self))
    }

    /// Key row [R] of `row`.
    public func key(row: Int) -> [Float] {
        guard row >= 0, row < rowCount else { return [] }
        return Array(UnsafeBufferPointer(start: keyBase + row * keyDimension, count: keyDimension))
    }

    /// Prompt row [P*C] of `row` (P vectors of C floats).
    public func prompt(row: Int) -> [Float] {
        guard row >= 0, row < rowCount else { return [] }
        let n = promptRows * promptWidth
        let base = (prompts.base + MatrixFile.headerSize).assumingMemoryBound(to: Float.self)
        return Array(UnsafeBufferPointer(start: base + row * n, count: n))
    }

    /// The log sequence of the fact stored in `row` (0 for the sentinel).
    public func sequence(row: Int) -> UInt64 {
        guard row >= 0, row < rowCount else { return 0 }
        return (rowMap.base + MatrixFile.headerSize).load(fromByteOffset: row * 8, as: UInt64.self)
    }

    /// The fact in `row`, nil for the sentinel or out of range.
    public func fact(row: Int) -> Fact? {
        guard row > 0, row < rowCount else { return nil }
        return catalog[sequence(row: row)]
    }

    public func isLive(row: Int) -> Bool { row > 0 && row < rowCount && live[row] }

    /// Every live fact, in row order.
    public var liveFacts: [Fact] { (1..<max(1, rowCount)).filter { live[$0] }.compactMap { fact(row: $0) } }

    /// `search` for several queries in one pass over the key matrix (see the batched
    /// `KeySearch.topK`); the results equal one `search` per query.
    public func search(_ queries: [[Float]], k: Int = 1, scale: Float = 1) throws -> [SearchResult] {
        for q in queries where q.count != keyDimension {
            throw StorageError.queryShape(expected: keyDimension, actual: q.count)
        }
        guard !queries.isEmpty else { return [] }
        let flat = queries.flatMap { $0 }
        return flat.withUnsafeBufferPointer { q in
            live.withUnsafeBufferPointer { liveMask in
                let found = KeySearch.topK(keys: keyBase, dimension: keyDimension, rows: 1..<max(1, rowCount), live: liveMask,
                                           queries: q.baseAddress!, count: queries.count, k: k, scale: scale)
                return found.enumerated().map { i, hits in
                    let sentinel = KeySearch.dot(keyBase, q.baseAddress! + i * keyDimension, keyDimension) * scale
                    let candidates = hits.compactMap { h in fact(row: h.row).map { RetrievalHit(row: h.row, score: h.score, fact: $0) } }
                    return SearchResult(hits: candidates.filter { $0.score > sentinel }, candidates: candidates, sentinelScore: sentinel)
                }
            }
        }
    }

    /// Exact top-`k` over the live rows by `scale * dot(key, query)`, keeping only hits
    /// that beat the sentinel's score (RECIPE's Knowledge Sentinel rule).
    ///   query: [R]
    public func search(_ query: [Float], k: Int = 1, scale: Float = 1) throws -> SearchResult {
        guard query.count == keyDimension else {
            throw StorageError.queryShape(expected: keyDimension, actual: query.count)
        }
        return query.withUnsafeBufferPointer { q in
            live.withUnsafeBufferPointer { liveMask in
                let sentinel = KeySearch.dot(keyBase, q.baseAddress!, keyDimension) * scale
                let found = KeySearch.topK(keys: keyBase, dimension: keyDimension, rows: 1..<max(1, rowCount),
                                           live: liveMask, query: q.baseAddress!, k: k, scale: scale)
                let candidates = found.compactMap { h in fact(row: h.row).map { RetrievalHit(row: h.row, score: h.score, fact: $0) } }
                return SearchResult(hits: candidates.filter { $0.score > sentinel }, candidates: candidates,
                                    sentinelScore: sentinel)
            }
        }
    }
}
