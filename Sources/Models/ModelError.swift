// Errors raised while binding or running a model. Each names the file and the tensor or
// metadata key, with expected against actual and a hint where one helps.

public enum ModelError: Error, CustomStringConvertible, Equatable {
    /// A tensor the architecture needs is not in the file.
    case missingTensor(file: String, tensor: String)
    /// A tensor has another shape than the hyper-parameters imply.
    case shapeMismatch(file: String, tensor: String, expected: [Int], actual: [Int])
    /// A metadata key is missing or has the wrong type or an impossible value.
    case badMetadata(file: String, key: String, expected: String, actual: String)
    /// The file is valid but uses something this engine does not implement.
    case unsupported(file: String, what: String, hint: String)
    /// The caller passed something the model cannot take (too long, bad id, ...).
    case invalidInput(String)
    /// A model directory or file could not be found.
    case notFound(path: String, hint: String)

    public var description: String {
        switch self {
        case let .missingTensor(file, tensor):
            return "\(file): tensor '\(tensor)' is missing"
        case let .shapeMismatch(file, tensor, expected, actual):
            return "\(file): tensor '\(tensor)' has shape \(actual), expected \(expected)"
        case let .badMetadata(file, key, expected, actual):
            return "\(file): metadata '\(key)' is \(actual), expected \(expected)"
        case let .unsupported(file, what, hint):
            return "\(file): \(what) is not supported" + (hint.isEmpty ? "" : " (\(hint))")
        case let .invalidInput(message):
            return message
        case let .notFound(path, hint):
            return "\(path) not found" + (hint.isEmpty ? "" : ": \(hint)")
        }
    }
}
