// An immutable view of the repository as of one committed time step: the mapped key,
// prompt and row-map files, the row count and which rows are live. The writer publishes a
// new snapshot at the end of every step and after compaction; a reader that holds one
// keeps its mappings alive (even after compaction unlinks the files) and never sees a
// half-written step, because rows below `rowCount` are never rewritten in place. The same
// holds for the int8 copy of the keys it searches with above the two-stage threshold.
import Glibc
import Parallelism
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
    /// The int8 copy of the key rows 0..<rowCount, nil when two-stage search is off.
    public let quantizedKeys: QuantizedKeys.View?
    /// Rows searched from which `search` runs in two stages (`RepositoryOptions`).
    let twoStageRows: Int
    let candidates: Int

    init(rowCount: Int, keyDimension: Int, promptRows: Int, promptWidth: Int, timeStep: UInt64,
         generation: UInt64, keys: MappedRegion, prompts: MappedRegion, rowMap: MappedRegion,
         live: [Bool], catalog: FactCatalog, codes: QuantizedKeys.View?, twoStageRows: Int, candidates: Int) {
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
        quantizedKeys = codes
        self.twoStageRows = twoStageRows
        self.candidates = candidates
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

    /// Whether `search` runs in two stages (int8 candidates, exact rescoring) rather than
    /// the exact f32 scan: the int8 copy is kept and the rows searched reach
    /// `RepositoryOptions.twoStageSearchRows`.
    public var searchesInTwoStages: Bool {
        quantizedKeys.map { $0.count >= rowCount && rowCount - 1 >= twoStageRows } ?? false
    }

    /// `search` for several queries in one pass over the keys (see the batched
    /// `KeySearch.topK`); the results equal one `search` per query.
    public func search(_ queries: [[Float]], k: Int = 1, scale: Float = 1) throws -> [SearchResult] {
        for q in queries where q.count != keyDimension {
            throw StorageError.queryShape(expected: keyDimension, actual: q.count)
        }
        guard !queries.isEmpty else { return [] }
        return results(queries.flatMap { $0 }, count: queries.count, k: k, scale: scale)
    }

    /// Top-`k` over the live rows by `scale * dot(key, query)`, keeping only hits that beat
    /// the sentinel's score (RECIPE's Knowledge Sentinel rule). Exact f32 scan, or two
    /// stages above the threshold (see `searchesInTwoStages`); either way the scores, and
    /// so the sentinel rule, are exact.
    ///   query: [R]
    public func search(_ query: [Float], k: Int = 1, scale: Float = 1) throws -> SearchResult {
        guard query.count == keyDimension else {
            throw StorageError.queryShape(expected: keyDimension, actual: query.count)
        }
        return results(query, count: 1, k: k, scale: scale)[0]
    }

    /// Search of Q queries [Q, R], then the sentinel rule on the exact scores.
    private func results(_ flat: [Float], count Q: Int, k: Int, scale: Float) -> [SearchResult] {
        let R = keyDimension, rows = 1..<max(1, rowCount)
        return flat.withUnsafeBufferPointer { q in
            live.withUnsafeBufferPointer { liveMask in
                let found: [[SearchHit]]
                if searchesInTwoStages, let codes = quantizedKeys {
                    found = KeySearch.topK(keys: keyBase, codes: codes, rows: rows, live: liveMask, queries: q.baseAddress!,
                                           count: Q, k: k, candidates: candidates, scale: scale)
                } else if Q == 1 {
                    found = [KeySearch.topK(keys: keyBase, dimension: R, rows: rows, live: liveMask, query: q.baseAddress!,
                                            k: k, scale: scale)]
                } else {
                    found = KeySearch.topK(keys: keyBase, dimension: R, rows: rows, live: liveMask, queries: q.baseAddress!,
                                           count: Q, k: k, scale: scale)
                }
                return found.enumerated().map { i, hits in
                    let sentinel = dot(keyBase, q.baseAddress! + i * R, R) * scale
                    let candidates = hits.compactMap { h in fact(row: h.row).map { RetrievalHit(row: h.row, score: h.score, fact: $0) } }
                    return SearchResult(hits: candidates.filter { $0.score > sentinel }, candidates: candidates, sentinelScore: sentinel)
                }
            }
        }
    }
}
