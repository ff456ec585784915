// The one error type of the WeightFormats module. Every case names the file, the tensor or
// metadata key where there is one, the byte offset where it is known, and expected against
// actual, so that a user holding a broken or foreign file can tell what is wrong with it.

public enum WeightFormatError: Error, CustomStringConvertible, Equatable {
    /// A system call failed (`open`, `fstat`, `mmap`, `write`, ...); `errno` is the C errno.
    case io(path: String, operation: String, errno: Int32)
    /// A read of `needed` bytes at `offset` ran past the end (`available` bytes were left).
    case truncated(path: String, offset: Int, needed: Int, available: Int, context: String)
    /// The file does not start with the format's magic.
    case badMagic(path: String, expected: String, actual: String)
    /// A format version this reader does not understand.
    case unsupportedVersion(path: String, version: UInt32, hint: String)
    /// A count or length in the header is beyond what any sane file holds (or beyond what
    /// the rest of the file could possibly encode), so nothing is allocated for it.
    case limitExceeded(path: String, what: String, offset: Int, limit: Int, actual: UInt64)
    /// A metadata value type id that GGUF does not define (or an array nested too deeply).
    case invalidValueType(path: String, key: String, offset: Int, actual: UInt32)
    /// A byte that should be a bool (0 or 1) is something else.
    case invalidBool(path: String, key: String, offset: Int, actual: UInt8)
    /// A key or tensor name that is not valid UTF-8.
    case invalidUTF8(path: String, offset: Int, context: String)
    /// The same metadata key appears twice.
    case duplicateKey(path: String, key: String, offset: Int)
    /// The same tensor name appears twice.
    case duplicateTensor(path: String, tensor: String, offset: Int)
    /// A tensor type id that ggml does not define (or a type removed from ggml).
    case unknownTensorType(path: String, tensor: String, offset: Int, actual: UInt32)
    /// A tensor dimension is invalid (negative, or more dimensions than allowed).
    case invalidShape(path: String, tensor: String, offset: Int, shape: [Int64], reason: String)
    /// The row length (shape[0]) is not a multiple of the type's block size.
    case shapeNotBlockMultiple(path: String, tensor: String, type: String, rowLength: Int, blockSize: Int)
    /// element count × type size does not fit in a machine integer.
    case sizeOverflow(path: String, tensor: String, shape: [Int64], type: String)
    /// Tensor data does not start on the file's alignment.
    case misaligned(path: String, tensor: String, offset: Int, alignment: Int)
    /// Tensor data lies (partly) outside the file or the data section.
    case outOfFile(path: String, tensor: String, start: Int, end: Int, limit: Int)
    /// Two tensors' data ranges overlap.
    case overlap(path: String, tensor: String, other: String, offset: Int)
    /// A metadata key is absent.
    case missingKey(path: String, key: String)
    /// A metadata value or header field has another type or an impossible value.
    case badMetadata(path: String, key: String, expected: String, actual: String)
    /// A tensor name that the file does not contain.
    case missingTensor(path: String, tensor: String)
    /// The tensor's type is valid but not one this module can convert.
    case unsupportedType(path: String, tensor: String, type: String, hint: String)
    /// A header (safetensors JSON) that cannot be parsed or has an invalid entry.
    case invalidHeader(path: String, tensor: String, reason: String)
    /// A caller passed an argument the function cannot take (writer, quantizer).
    case invalidArgument(String)

    public var description: String {
        switch self {
        case let .io(path, operation, err):
            return "\(path): \(operation) failed: \(errnoDescription(err)) (errno \(err))"
        case let .truncated(path, offset, needed, available, context):
            return "\(path): truncated at offset \(offset)\(context.isEmpty ? "" : " reading \(context)"): "
                + "needed \(needed) bytes, \(available) available"
        case let .badMagic(path, expected, actual):
            return "\(path): not a \(expected) file (magic is \(actual))"
        case let .unsupportedVersion(path, version, hint):
            return "\(path): unsupported format version \(version)" + (hint.isEmpty ? "" : " (\(hint))")
        case let .limitExceeded(path, what, offset, limit, actual):
            return "\(path): \(what) at offset \(offset) is \(actual), more than the limit \(limit)"
        case let .invalidValueType(path, key, offset, actual):
            return "\(path): metadata '\(key)' at offset \(offset) has unknown value type \(actual)"
        case let .invalidBool(path, key, offset, actual):
            return "\(path): metadata '\(key)' at offset \(offset) has bool byte \(actual), expected 0 or 1"
        case let .invalidUTF8(path, offset, context):
            return "\(path): \(context) at offset \(offset) is not valid UTF-8"
        case let .duplicateKey(path, key, offset):
            return "\(path): duplicate metadata key '\(key)' at offset \(offset)"
        case let .duplicateTensor(path, tensor, offset):
            return "\(path): duplicate tensor name '\(tensor)' at offset \(offset)"
        case let .unknownTensorType(path, tensor, offset, actual):
            return "\(path): tensor '\(tensor)' at offset \(offset) has unknown ggml type \(actual)"
        case let .invalidShape(path, tensor, offset, shape, reason):
            return "\(path): tensor '\(tensor)' at offset \(offset) has invalid shape \(shape): \(reason)"
        case let .shapeNotBlockMultiple(path, tensor, type, rowLength, blockSize):
            return "\(path): tensor '\(tensor)' of type \(type) has row length \(rowLength), "
                + "expected a multiple of the block size \(blockSize)"
        case let .sizeOverflow(path, tensor, shape, type):
            return "\(path): tensor '\(tensor)' with shape \(shape) of type \(type) is too large (size overflows)"
        case let .misaligned(path, tensor, offset, alignment):
            return "\(path): tensor '\(tensor)' data offset \(offset) is not a multiple of the alignment \(alignment)"
        case let .outOfFile(path, tensor, start, end, limit):
            return "\(path): tensor '\(tensor)' data \(start)..<\(end) lies outside the data, which ends at \(limit)"
        case let .overlap(path, tensor, other, offset):
            return "\(path): tensor '\(tensor)' data at offset \(offset) overlaps tensor '\(other)'"
        case let .missingKey(path, key):
            return "\(path): metadata key '\(key)' is missing"
        case let .badMetadata(path, key, expected, actual):
            return "\(path): metadata '\(key)' is \(actual), expected \(expected)"
        case let .missingTensor(path, tensor):
            return "\(path): tensor '\(tensor)' is missing"
        case let .unsupportedType(path, tensor, type, hint):
            return "\(path): tensor '\(tensor)' has type \(type), which is not supported"
                + (hint.isEmpty ? "" : " (\(hint))")
        case let .invalidHeader(path, tensor, reason):
            return "\(path): invalid header" + (tensor.isEmpty ? "" : " entry '\(tensor)'") + ": \(reason)"
        case let .invalidArgument(message):
            return message
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `strerror` text for an errno value.
func errnoDescription(_ err: Int32) -> String {
    guard let s = strerror(err) else { return "error \(err)" }
    return String(cString: s)
}
