// Model-based test: random operations against the repository and against a plain
// in-memory model of the documented rules (dedup by normalized text, supersession by id,
// subject + prompt or text, retraction by id or statement), with reopen, compaction and
// log compaction in between. Live facts and outcomes must agree at every step.
import Storage
import Testing
import TestSupport

private struct ModelFact: Equatable {
    var id: String
    var text: String
    var slot: String?
}

private struct Model {
    var live: [ModelFact] = []

    mutating func apply(_ op: FactOperation) -> FactOutcome {
        switch op {
        case .add(let statement, let prompt, let target, let subject, let givenID, _):
            let id = givenID.flatMap { $0.isEmpty ? nil : $0 }
            let text = FactText.normalize(statement)
            if text.isEmpty { return .invalid("empty statement") }
            let key = text.lowercased()
            if let f = live.first(where: { $0.text.lowercased() == key }), id == nil || id == f.id {
                return .duplicate(existing: f.id)
            }
            let slot = (prompt != nil && target != nil) ? FactText.slot(subject: subject, prompt: prompt!) : nil
            var retire: [Int] = []
            func consider(_ i: Int?) { if let i, !retire.contains(i) { retire.append(i) } }
            if let id { consider(live.firstIndex { $0.id == id }) }
            if let slot { consider(live.firstIndex { $0.slot == slot }) }
            consider(live.firstIndex { $0.text.lowercased() == key })
            let newID = id ?? FactText.derivedID(text)
            let replaced = retire.first.map { live[$0].id }
            for i in retire.sorted(by: >) { live.remove(at: i) }
            let p = prompt.map(FactText.normalize)
            live.append(ModelFact(id: newID, text: text, slot: p != nil && target != nil ? FactText.slot(subject: subject, prompt: p!) : nil))
            if let replaced { return .superseded(id: newID, sequence: 0, replaced: replaced) }
            return .added(id: newID, sequence: 0)
        case .retractID(let id, _):
            guard let i = live.firstIndex(where: { $0.id == id }) else { return .notFound(id) }
            live.remove(at: i)
            return .retracted(id: id)
        case .retractStatement(let s, _):
            guard let i = live.firstIndex(where: { $0.text.lowercased() == FactText.key(s) }) else { return .notFound(FactText.normalize(s)) }
            let id = live[i].id
            live.remove(at: i)
            return .retracted(id: id)
        }
    }
}

/// Outcomes without sequences (the model does not number records).
private func shape(_ o: FactOutcome) -> FactOutcome {
    switch o {
    case .added(let id, _): return .added(id: id, sequence: 0)
    case .superseded(let id, _, let r): return .superseded(id: id, sequence: 0, replaced: r)
    default: return o
    }
}

@Suite struct ModelTests {
    @Test(arguments: [1, 2, 3])
    func repositoryAgreesWithTheModel(seed: UInt64) throws {
        let dir = try temporaryPath("model")
        let enc = HashingFactEncoder()
        var repo = try Repository(path: dir, encoder: enc)
        var model = Model()
        var rng = SeededRandom(seed: seed)
        func pick<T>(_ xs: [T]) -> T { xs[Int(rng.next() % UInt64(xs.count))] }
        let ids: [String?] = [nil, nil, "a", "b", "c", ""]
        let subjects: [String?] = [nil, "Narnia", "Gondor"]
        let prompts = ["The capital of X is", "The ruler of X is", "the  capital of x is"]
        let targets = ["Paris", "Rome", "rome", "Minas Tirith"]
        let statements = ["Water is wet", "water  is WET", "Fire is hot", "Ice is cold", "  "]
        for step in 0..<120 {
            var ops: [FactOperation] = []
            for _ in 0..<Int(1 + rng.next() % 4) {
                switch rng.next() % 6 {
                case 0, 1:
                    let p = pick(prompts), t = pick(targets)
                    ops.append(.add(statement: p + " " + t, prompt: p, target: t, subject: pick(subjects), id: pick(ids)))
                case 2: ops.append(.add(statement: pick(statements), id: pick(ids)))
                case 3: ops.append(.retractID(pick(["a", "b", "c", FactText.derivedID("Fire is hot")])))
                case 4: ops.append(.retractStatement(pick(statements)))
                default: ops.append(.add(statement: pick(statements)))
                }
            }
            let expected = ops.map { model.apply($0) }
            let report = try repo.commit(ops)
            #expect(report.outcomes.map(shape) == expected, "seed \(seed) step \(step): \(ops)")
            let live = repo.snapshot().liveFacts.map { "\($0.id)=\($0.statement)" }.sorted()
            #expect(live == model.live.map { "\($0.id)=\($0.text)" }.sorted(), "seed \(seed) step \(step)")
            switch rng.next() % 10 {
            case 0:
                try repo.close()
                repo = try Repository(path: dir, encoder: enc)
                #expect(repo.openReport.skippedRecords.isEmpty)
                #expect(repo.openReport.rebuilt == nil)
            case 1: _ = try repo.compact()
            case 2: _ = try repo.compactLog(keepArchive: rng.next() % 2 == 0)
            default: break
            }
            for f in repo.snapshot().liveFacts {
                #expect(try retrieve(repo, enc, f.statement) == f.id, "seed \(seed) step \(step): \(f.id)")
            }
        }
        try repo.close()
    }
}
