// What became of one inbox file once its facts were durable (`InboxWatcher`, through its
// batch's `SourceBatch.complete`): how its facts came out, its rejections and where the file
// and its side files went.

public struct InboxFileReport: Sendable {
    public let name: String
    /// Facts (and retractions) parsed from the file.
    public let facts: Int
    /// How the repository took them.
    public let counts: OutcomeSummary
    /// Parse errors and refused operations, in line order.
    public let rejections: [FactRejection]
    /// Where the file went: the done area, or the rejected area for a file that is not a
    /// fact file or was not read (not a regular file, unreadable).
    public let movedTo: String
    public let rejectionsFile: String?
}
