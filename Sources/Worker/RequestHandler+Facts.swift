// `add` and `retract` over the socket: each fact object is checked against the limits and
// read by the same `FactParser` as the inbox files, then the request's operations are
// committed as one time step (`GroupCommit`) and acknowledged once durable.
import Foundation
import Storage
import WorkerAPI

extension RequestHandler {
    static let parser = FactParser(sourceKind: .socket)

    /// One fact object of `add` (named `field` in errors: `fact`, `facts[2]`): every field at
    /// most `limits.maxFactBytes` (`source` is cut to 128 characters), then parsed.
    func operation(_ fact: FactInput, field: String) throws -> FactOperation {
        var object: [String: Any] = [:]
        let max = state.config.limits.maxFactBytes
        for (key, s) in fact.fields {
            if key == "source" { object[key] = String(s.prefix(128)); continue }
            if s.utf8.count > max { throw RequestError("too_large", "'\(field).\(key)' is longer than \(max) bytes", field: "\(field).\(key)", limit: max) }
            object[key] = s
        }
        switch Self.parser.operation(from: object, file: "socket", line: 0) {
        case .success(let op): return op
        case .failure(let reason): throw RequestError("invalid_fact", "\(field): \(reason)")
        }
    }

    func commit(_ ops: [FactOperation]) throws -> CommitReply {
        guard !state.stopping else { throw RequestError("shutting_down", "the worker is shutting down") }
        let report: (outcomes: [FactOutcome], timeStep: UInt64, stepped: Bool)
        do { report = try group.commit(ops) } catch {
            // A commit abandoned for shutdown (a long prompt refinement) stored nothing.
            if state.stopping { throw RequestError("shutting_down", "the worker is shutting down: not stored") }
            state.metrics.commitFailed()
            throw RequestError("storage", "not stored: \(error)")
        }
        let counts = OutcomeSummary(report.outcomes)
        state.metrics.ingested(stored: counts.stored, duplicates: counts.duplicates, rejected: 0, steps: 0)
        return CommitReply(outcomes: report.outcomes.map(Self.outcome), timeStep: report.timeStep)
    }

    static func outcome(_ o: FactOutcome) -> CommitOutcome {
        switch o {
        case let .added(id, _): return .added(factID: id)
        case let .superseded(id, _, replaced): return .superseded(factID: id, replaced: replaced)
        case let .duplicate(existing): return .duplicate(factID: existing)
        case let .retracted(id): return .retracted(factID: id)
        case let .notFound(what): return .notFound(target: what)
        case let .invalid(why): return .invalid(reason: why)
        }
    }

    func add(_ r: AddRequest) throws -> CommitReply {
        var ops: [FactOperation] = []
        if let f = r.fact { ops.append(try operation(f, field: "fact")) }
        for (i, f) in (r.facts ?? []).enumerated() { ops.append(try operation(f, field: "facts[\(i)]")) }
        guard !ops.isEmpty else { throw RequestError.missing("fact") }
        for op in ops { if case .add = op {} else { throw RequestError.invalid("fact", "must be a fact to add (use op retract to remove one)") } }
        return try commit(ops)
    }

    func retract(_ r: RetractRequest) throws -> CommitReply {
        if let s = r.factID {
            guard !s.trimmingCharacters(in: .whitespaces).isEmpty else { throw RequestError.invalid("fact_id", "must not be empty") }
            return try commit([.retractID(s, source: FactSource(kind: .socket, name: "socket"))])
        }
        if let s = r.statement {
            guard !FactText.normalize(s).isEmpty else { throw RequestError.invalid("statement", "must not be empty") }
            return try commit([.retractStatement(s, source: FactSource(kind: .socket, name: "socket"))])
        }
        throw RequestError.missing("fact_id")
    }
}
