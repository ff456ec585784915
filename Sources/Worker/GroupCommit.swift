// Group commit for socket `add`/`retract` requests: while one commit (encode + log fsync)
// runs, requests from other connections queue up; the next commit takes all of them at
// once. Each request still gets its reply only after its own operations are durable,
// but N concurrent clients cost one fsync per round instead of N.
import Foundation
import Storage

public final class GroupCommit: @unchecked Sendable {
    let repository: Repository
    private let condition = NSCondition()
    private var queue: [Entry] = []
    private var committing = false

    final class Entry {
        let operations: [FactOperation]
        var result: Result<(outcomes: [FactOutcome], timeStep: UInt64, stepped: Bool), Error>?
        init(_ operations: [FactOperation]) { self.operations = operations }
    }

    public init(repository: Repository) { self.repository = repository }

    /// Commits `operations` (possibly together with other callers'); returns their outcomes
    /// and the time step once durable, or throws the commit's error (nothing stored).
    public func commit(_ operations: [FactOperation]) throws -> (outcomes: [FactOutcome], timeStep: UInt64, stepped: Bool) {
        let mine = Entry(operations)
        condition.lock()
        queue.append(mine)
        while mine.result == nil && committing { condition.wait() }
        if let r = mine.result {
            condition.unlock()
            return try r.get()
        }
        // Leader: commit everything queued, round after round, until our entry is done.
        committing = true
        while mine.result == nil {
            let batch = queue
            queue = []
            condition.unlock()
            let result = Result { try repository.commit(batch.flatMap(\.operations)) }
            condition.lock()
            var offset = 0
            for e in batch {
                switch result {
                case .success(let report):
                    let slice = Array(report.outcomes[offset..<offset + e.operations.count])
                    e.result = .success((slice, report.timeStep, report.sequences != nil))
                case .failure(let error):
                    e.result = .failure(error)
                }
                offset += e.operations.count
            }
        }
        committing = false
        condition.broadcast()
        condition.unlock()
        return try mine.result!.get()
    }
}
