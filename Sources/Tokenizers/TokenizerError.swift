// Errors raised while building a tokenizer from its files or encoding/decoding text.

public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    /// A vocabulary or merges entry is malformed (file and 1-based line/entry where known).
    case vocabulary(file: String, entry: Int?, reason: String)
    /// A metadata key is missing or has an unexpected value.
    case metadata(file: String, key: String, reason: String)
    /// The model asks for something this implementation does not do.
    case unsupported(file: String, what: String, hint: String)
    /// A token id outside the vocabulary, or text that cannot be encoded.
    case invalidInput(String)

    public var description: String {
        switch self {
        case let .vocabulary(file, entry, reason):
            return "\(file)\(entry.map { ":\($0)" } ?? ""): \(reason)"
        case let .metadata(file, key, reason):
            return "\(file): metadata '\(key)': \(reason)"
        case let .unsupported(file, what, hint):
            return "\(file): \(what) is not supported" + (hint.isEmpty ? "" : " (\(hint))")
        case let .invalidInput(message):
            return message
        }
    }
}
