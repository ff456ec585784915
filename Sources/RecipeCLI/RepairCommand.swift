// `recipe repair`: salvages a repository whose fact log is damaged in the middle, the case
// `recipe serve` and `recipe ingest` refuse to open (Storage/Durability.swift, recovery).
// It needs no model files: it rewrites the log only; the next open keeps every row whose
// record survived and marks the others dead.
import Storage

enum RepairCommand: Subcommand {
    static let name = "repair"
    static let summary = "salvage a repository whose fact log is damaged in the middle"
    static let help = """
    usage: recipe repair --repository DIR [--json]

    Keeps every intact record of DIR/facts.log and drops only the damaged bytes:
      - each damaged range is copied into DIR/torn/ byte for byte,
      - the damaged log is kept whole as DIR/facts.log.<ms>.damaged,
      - a log of the intact records (sequences unchanged) replaces facts.log atomically.
    Prints what was kept and, per damaged range, the byte offset, length, reason and which
    record sequences lie between the intact records around it (those are lost: look for
    them in your sources, or restore DIR from a backup). The next `recipe serve` or
    `recipe ingest` opens the repository as usual; rows of lost records become dead.
    A log whose only damage is its last record (a crash during an append) needs no repair:
    opening cuts it and keeps it in torn/.

    Run it only while no worker uses DIR (it takes the repository's writer lock and exits 1
    when another process holds it). Take a copy of DIR first.

    options:
      --repository DIR  the repository to salvage
      --json            print one JSON object instead of text

    exit codes: 0 repaired (or nothing to repair), 1 failure (lock held, I/O error, bad header),
                2 bad command line
    """
    static let valued: Set<String> = ["repository"]

    static func run(_ args: inout Arguments) throws -> ExitCode {
        guard let dir = args.string("repository") else { throw UsageError("--repository DIR is required") }
        let json = args.flag("json")
        try args.rejectUnknown()
        guard args.positional.isEmpty else { throw UsageError("unexpected argument '\(args.positional[0])'") }
        let report = try Repository.repairLog(path: dir)
        let ranges = report.salvage?.damaged.map(\.range) ?? []
        if json {
            var out: [String: Any] = ["repository": dir, "records_kept": report.records, "repaired": report.salvage != nil]
            if let s = report.salvage {
                out["damaged_log_kept_in"] = s.archivePath
                out["damaged"] = s.damaged.map { k -> [String: Any] in
                    var d: [String: Any] = ["offset": k.range.offset, "bytes": k.range.length, "reason": k.range.reason,
                                            "after_record": Int(k.range.after), "kept_in": k.savedPath]
                    if let b = k.range.before { d["before_record"] = Int(b) }
                    return d
                }
            }
            if let t = report.tornTail {
                out["torn_tail"] = ["offset": t.offset, "bytes": t.length, "reason": t.reason, "kept_in": t.savedPath]
            }
            IngestOutput.json(out)
            return .ok
        }
        guard let s = report.salvage else {
            if let t = report.tornTail {
                print("\(dir): only the last record was damaged (a torn append, never acknowledged): cut at byte \(t.offset), "
                      + "\(t.length) bytes kept in \(t.savedPath); \(report.records) records kept")
            } else {
                print("\(dir): the fact log is intact (\(report.records) records); nothing to repair")
            }
            return .ok
        }
        print("\(dir): salvaged the fact log: \(report.records) intact records kept; the damaged log is kept in \(s.archivePath)")
        for r in ranges {
            let lost = r.before.map { b in b > r.after + 1 ? "records \(r.after + 1)...\(b - 1) lost" : "no record lost" }
                ?? "records after \(r.after) lost (the tail)"
            print("  bytes \(r.offset)..<\(r.offset + r.length): \(r.reason); \(lost)")
        }
        for k in s.damaged { print("  kept in \(k.savedPath)") }
        return .ok
    }
}
