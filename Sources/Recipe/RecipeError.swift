// Errors of the editor: data files, checkpoints, configuration.

public enum RecipeError: Error, CustomStringConvertible, Equatable {
    /// A record of a dataset file is malformed: file, 0-based record index, field, reason.
    case dataset(file: String, record: Int?, field: String?, reason: String)
    /// A checkpoint file is malformed or was made for other models.
    case checkpoint(file: String, reason: String)
    /// An argument or configuration value is out of range.
    case invalidArgument(String)
    /// Work abandoned because the process is stopping (what was abandoned).
    case interrupted(String)
    /// The prompt state file cannot be used (`PromptStateStore`): path and reason.
    case promptStates(file: String, reason: String)

    public var description: String {
        switch self {
        case let .dataset(file, record, field, reason):
            var at = file
            if let record { at += " record \(record)" }
            if let field { at += " field '\(field)'" }
            return "\(at): \(reason)"
        case let .checkpoint(file, reason):
            return "\(file): \(reason)"
        case let .invalidArgument(message):
            return message
        case let .interrupted(what):
            return "interrupted: \(what)"
        case let .promptStates(file, reason):
            return "\(file): \(reason)"
        }
    }
}
