// `recipe ingest --verify`: is the repository exactly what its log says? Reopens it (so
// recovery runs), copies the fact log alone into a scratch directory and opens that (no
// manifest: every live fact is re-encoded from the log), then compares the two row by row
// by log sequence: same live facts, keys and prompts equal within --tolerance relative to
// each row's largest magnitude (a fact encoded in a batch of another shape rounds
// differently), the same sentinel, one row per live fact, no statement live twice.
import Foundation
import Glibc
import Posix
import Storage

enum IngestVerify {
    /// Rows encoded in other batch shapes differ by ~4e-6 absolute, ~1e-5 relative to the
    /// row's largest magnitude, on this project's machines; 1e-3 leaves room for that and
    /// still fails a row of another fact, a zeroed page or a damaged exponent.
    static let defaultTolerance: Float = 1e-3

    static func run(repository: String, encoder: any FactEncoder, listIDs: String?, tolerance: Float) throws -> ExitCode {
        guard FileSystem.exists(repository + "/facts.log") else {
            IngestOutput.note("recipe ingest --verify: \(repository): no facts.log (not a repository)")
            return .failure
        }
        let repo = try IngestCommand.openRepository(repository, IngestEncoder.Loaded(encoder: encoder, description: encoder.fingerprint, recipe: nil))
        defer { try? repo.close() }
        let scratch = NSTemporaryDirectory() + "recipe-verify-\(getpid())-\(Int(Date().timeIntervalSince1970 * 1000))"
        defer { removeTree(scratch) }
        try FileSystem.makeDirectory(scratch)
        try FileSystem.atomicReplace(scratch + "/facts.log", with: FileSystem.readFile(repository + "/facts.log"))
        let fresh = try Repository(path: scratch, encoder: encoder)
        defer { try? fresh.close() }

        let a = repo.snapshot(), b = fresh.snapshot()
        var problems: [String] = []
        func problem(_ s: String) { if problems.count < 20 { problems.append(s) } }
        var freshRow: [UInt64: Int] = [:]
        for r in 1..<max(1, b.rowCount) where b.isLive(row: r) { freshRow[b.sequence(row: r)] = r }

        var maxDiff: Float = 0, mismatchedRows = 0, compared = 0
        var seenSequences: Set<UInt64> = [], seenStatements: [String: String] = [:], ids: [String] = []
        /// `x` (stored) against `y` (re-encoded): |x - y| <= tolerance * max |y| per element.
        func compare(_ x: [Float], _ y: [Float]) -> Bool {
            guard x.count == y.count else { maxDiff = .infinity; return false }
            let scale = y.reduce(Float(0)) { max($0, abs($1)) }
            var same = true
            for i in 0..<x.count where x[i].bitPattern != y[i].bitPattern {
                let d = abs(x[i] - y[i])
                let relative = scale > 0 ? d / scale : d
                if !(relative <= tolerance) { same = false }
                maxDiff = max(maxDiff, relative.isNaN ? .infinity : relative)
            }
            return same
        }
        if !compare(a.key(row: 0), b.key(row: 0)) || !compare(a.prompt(row: 0), b.prompt(row: 0)) {
            problem("row 0 (sentinel) differs from the encoder's sentinel")
        }
        for r in 1..<max(1, a.rowCount) where a.isLive(row: r) {
            let seq = a.sequence(row: r)
            guard let fact = a.fact(row: r) else { problem("row \(r): record \(seq) names no fact"); continue }
            if !seenSequences.insert(seq).inserted { problem("fact \(fact.id) (record \(seq)) has two live rows") }
            if let other = seenStatements.updateValue(fact.id, forKey: FactText.key(fact.statement)) {
                problem("statement of \(fact.id) is live twice (also \(other)): \(fact.statement.prefix(80))")
            }
            ids.append(fact.id)
            guard let fr = freshRow[seq] else {
                problem("fact \(fact.id) (record \(seq), row \(r)) is live but not in a re-encode of the log"); continue
            }
            compared += 1
            if !compare(a.key(row: r), b.key(row: fr)) || !compare(a.prompt(row: r), b.prompt(row: fr)) {
                mismatchedRows += 1
                problem("fact \(fact.id) (row \(r)): key or prompt differs from a fresh encode")
            }
        }
        for (seq, r) in freshRow where !seenSequences.contains(seq) {
            problem("fact \(b.fact(row: r)?.id ?? "?") (record \(seq)) is live in the log but has no live row")
        }
        if ids.count != repo.liveCount { problem("\(ids.count) live rows but \(repo.liveCount) live facts") }

        if let listIDs {
            try FileSystem.atomicReplace(listIDs, with: Array(ids.sorted().map { $0 + "\n" }.joined().utf8))
        }
        let ok = problems.isEmpty
        IngestOutput.json(["event": "verify", "ok": ok, "repository": repository, "live_facts": ids.count,
                      "rows_compared": compared, "mismatched_rows": mismatchedRows, "max_relative_diff": maxDiff.isFinite ? Double(maxDiff) : -1,
                      "tolerance": Double(tolerance), "problems": problems])
        for p in problems { IngestOutput.note("recipe ingest --verify: \(repository): \(p)") }
        return ok ? .ok : .failure
    }

    /// Removes the scratch directory (files and torn/).
    static func removeTree(_ dir: String) {
        for name in (try? FileSystem.list(dir)) ?? [] {
            let p = dir + "/" + name
            if FileSystem.isDirectory(p) { removeTree(p) } else { try? FileSystem.unlink(p) }
        }
        try? FileSystem.removeDirectory(dir)
    }
}
