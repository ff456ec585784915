// Tests drive ingestion the way the worker and `recipe ingest` do, through a
// `TimeStepCommitter`: this runs its steps until what they did together satisfies a test.
import Storage
import Worker

extension TimeStepCommitter {
    /// An inbox's committer with the default policy (each file a time step of its own).
    convenience init(inbox: InboxWatcher, repository: Repository) {
        self.init(sources: FactSources(inboxes: [inbox]), repository: repository)
    }

    /// Runs steps (at most `rounds`) until `done` holds for their reports summed; the sum.
    /// A step that throws ends it with the error.
    func steps(until done: (TimeStepReport) -> Bool, rounds: Int = 20, timeoutMilliseconds: Int32 = 200) throws -> TimeStepReport {
        var all = TimeStepReport()
        for _ in 0..<rounds where !done(all) {
            if let r = try step(timeoutMilliseconds: timeoutMilliseconds) { all.append(r) }
        }
        return all
    }
}
