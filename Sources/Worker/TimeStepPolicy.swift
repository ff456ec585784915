// When the time-step committer commits a time step (`timeStep` in the worker config,
// `WorkerService.policy`).

public struct TimeStepPolicy: Sendable {
    /// Commit once this many operations are gathered (larger inbox files are split into
    /// several steps and completed after the last).
    public var maximumOperations = 4096
    /// After the first batch arrives, keep gathering this long before committing.
    public var collectMilliseconds: Int32 = 100
    /// Commit every inbox file in time steps of its own (the lines of pipes, stdin and
    /// streams gathered meanwhile share steps), so a file's facts are never in a step
    /// with another file's, and each file's step numbers say when it became durable.
    public var stepPerFile = true
    public init(maximumOperations: Int = 4096, collectMilliseconds: Int32 = 100, stepPerFile: Bool = true) {
        self.maximumOperations = maximumOperations
        self.collectMilliseconds = collectMilliseconds
        self.stepPerFile = stepPerFile
    }
}
