// The repository's in-memory view of the log: every fact by the sequence of its add
// record, and indexes of the live ones by id, by normalized text and by subject + prompt.
// Built by replaying the log at open, then advanced by the records of each commit.

struct StoredFact: Sendable {
    var fact: Fact
    var sequence: UInt64
    var timeStep: UInt64
    var wallTime: Int64
    var live: Bool
}

struct FactTable {
    private(set) var facts: [UInt64: StoredFact] = [:]
    private(set) var liveByID: [String: UInt64] = [:]
    private(set) var liveByText: [String: UInt64] = [:]
    private(set) var liveBySlot: [String: UInt64] = [:]

    var liveCount: Int { liveByID.count }

    /// Undo journal of a planned but not yet durable time step (nil when not journaling).
    /// Planning mutates the table in place, so a step costs what it changes, not a copy
    /// of the whole table; `rollback` restores it when the step fails before the log fsync.
    private enum Change {
        case fact(UInt64, StoredFact?), id(String, UInt64?), text(String, UInt64?), slot(String, UInt64?)
    }
    private var journal: [Change]?

    mutating func reserve(_ n: Int) {
        facts.reserveCapacity(n)
        liveByID.reserveCapacity(n)
        liveByText.reserveCapacity(n)
        liveBySlot.reserveCapacity(n)
    }

    mutating func beginJournal() { journal = [] }
    mutating func endJournal() { journal = nil }

    mutating func rollback() {
        guard let changes = journal else { return }
        journal = nil
        for c in changes.reversed() {
            switch c {
            case .fact(let k, let v): facts[k] = v
            case .id(let k, let v): liveByID[k] = v
            case .text(let k, let v): liveByText[k] = v
            case .slot(let k, let v): liveBySlot[k] = v
            }
        }
    }

    private mutating func setFact(_ k: UInt64, _ v: StoredFact?) {
        journal?.append(.fact(k, facts[k]))
        facts[k] = v
    }
    private mutating func setID(_ k: String, _ v: UInt64?) {
        journal?.append(.id(k, liveByID[k]))
        liveByID[k] = v
    }
    private mutating func setText(_ k: String, _ v: UInt64?) {
        journal?.append(.text(k, liveByText[k]))
        liveByText[k] = v
    }
    private mutating func setSlot(_ k: String, _ v: UInt64?) {
        journal?.append(.slot(k, liveBySlot[k]))
        liveBySlot[k] = v
    }

    /// Applies one record; returns a reason when it does not fit the table (then the table
    /// is unchanged).
    mutating func apply(_ r: LogRecord) -> String? {
        switch r.body {
        case .add(let f):
            if liveByID[f.id] != nil { return "add of id \(f.id) which is live" }
            setFact(r.sequence, StoredFact(fact: f, sequence: r.sequence, timeStep: r.timeStep,
                                           wallTime: r.wallTime, live: true))
            setID(f.id, r.sequence)
            setText(FactText.storedKey(f.statement), r.sequence)
            if let p = f.prompt { setSlot(FactText.storedSlot(subject: f.subject, prompt: p), r.sequence) }
            return nil
        case .retract(let target, let id, _):
            return kill(target, id: id)
        case .checkpoint:
            return nil
        case .supersede(let old, let oldID, let new, _):
            guard new == r.sequence + 1 else { return "supersede names new fact @\(new), expected @\(r.sequence + 1)" }
            return kill(old, id: oldID)
        }
    }

    private mutating func kill(_ sequence: UInt64, id: String) -> String? {
        guard var f = facts[sequence], f.fact.id == id, f.live else {
            return "retraction of \(id)@\(sequence) which is not a live fact"
        }
        f.live = false
        setFact(sequence, f)
        if liveByID[id] == sequence { setID(id, nil) }
        let key = FactText.storedKey(f.fact.statement)
        if liveByText[key] == sequence { setText(key, nil) }
        if let p = f.fact.prompt {
            let slot = FactText.storedSlot(subject: f.fact.subject, prompt: p)
            if liveBySlot[slot] == sequence { setSlot(slot, nil) }
        }
        return nil
    }

    /// Turns operations into log records starting at `sequence`, applying them to this
    /// table as it goes (so later operations of a batch see earlier ones).
    mutating func plan(_ ops: [FactOperation], firstSequence: UInt64, timeStep: UInt64, wallTime: Int64,
                       maximumText: Int) -> (records: [LogRecord], outcomes: [FactOutcome]) {
        var records: [LogRecord] = []
        var outcomes: [FactOutcome] = []
        var next = firstSequence
        func emit(_ body: LogRecord.Body) -> UInt64 {
            let r = LogRecord(sequence: next, timeStep: timeStep, wallTime: wallTime, body: body)
            _ = apply(r)
            records.append(r)
            next += 1
            return r.sequence
        }
        for op in ops {
            switch op {
            case .add(let statement, let prompt, let target, let subject, let givenID, let source):
                let id = givenID.flatMap { $0.isEmpty ? nil : $0 }
                let text = FactText.normalize(statement)
                guard !text.isEmpty else { outcomes.append(.invalid("empty statement")); continue }
                let fields = [text, prompt ?? "", target ?? "", subject ?? "", id ?? ""]
                if let long = fields.first(where: { $0.utf8.count > maximumText }) {
                    outcomes.append(.invalid("field of \(long.utf8.count) bytes exceeds \(maximumText)")); continue
                }
                let key = FactText.key(text)
                if let existing = liveByText[key], let f = facts[existing], id == nil || id == f.fact.id {
                    outcomes.append(.duplicate(existing: f.fact.id)); continue
                }
                // Live facts the new one replaces, so that id, text and subject + prompt each
                // stay unique among live facts: same id first, then same subject + prompt
                // (a new target), then same text under another id. The first is superseded,
                // any others are retracted.
                let normalizedPrompt = prompt.map(FactText.normalize)
                var retire: [UInt64] = []
                func consider(_ s: UInt64?) { if let s, !retire.contains(s) { retire.append(s) } }
                consider(id.flatMap { liveByID[$0] })
                if let p = normalizedPrompt, target != nil { consider(liveBySlot[FactText.slot(subject: subject, prompt: p)]) }
                consider(liveByText[key])
                var newID = id ?? FactText.derivedID(text)
                if let owner = liveByID[newID], !retire.contains(owner) {
                    newID += "-\(next + UInt64(retire.count))"  // a derived id collides with an unrelated live fact
                }
                let fact = Fact(id: newID, statement: text, prompt: normalizedPrompt,
                                target: target.map(FactText.normalize), subject: subject.map(FactText.normalize),
                                source: source)
                for extra in retire.dropFirst() {
                    if let f = facts[extra] { _ = emit(.retract(target: extra, id: f.fact.id, source: source)) }
                }
                if let old = retire.first, let oldFact = facts[old] {
                    // The supersede record comes first and names the add that follows it,
                    // so that replay frees the old id and text before the new fact takes them.
                    _ = emit(.supersede(old: old, oldID: oldFact.fact.id, new: next + 1, newID: newID))
                    let seq = emit(.add(fact))
                    outcomes.append(.superseded(id: newID, sequence: seq, replaced: oldFact.fact.id))
                } else {
                    let seq = emit(.add(fact))
                    outcomes.append(.added(id: newID, sequence: seq))
                }
            case .retractID(let id, let source):
                guard let seq = liveByID[id] else { outcomes.append(.notFound(id)); continue }
                _ = emit(.retract(target: seq, id: id, source: source))
                outcomes.append(.retracted(id: id))
            case .retractStatement(let statement, let source):
                guard let seq = liveByText[FactText.key(statement)], let f = facts[seq] else {
                    outcomes.append(.notFound(FactText.normalize(statement))); continue
                }
                _ = emit(.retract(target: seq, id: f.fact.id, source: source))
                outcomes.append(.retracted(id: f.fact.id))
            }
        }
        return (records, outcomes)
    }
}
