// The one error type of the Storage module. Every case names the file and, where it
// applies, the record, offset and expected vs. actual value.
import Posix

public enum StorageError: Error, CustomStringConvertible, Sendable {
    /// A system call failed (ENOSPC, EIO, ...); the Posix error names call, path and errno.
    case system(PosixError)
    /// Another process (or another `Repository` in this one) holds the writer lock.
    case locked(path: String)
    /// The file does not start with the expected magic / version.
    case badHeader(path: String, expected: String, actual: String)
    /// A log record could not be decoded although its checksum was good.
    case badRecord(path: String, record: UInt64, offset: Int, reason: String)
    /// The manifest failed its checksum or could not be decoded.
    case badManifest(path: String, reason: String)
    /// The encoder returned arrays of the wrong size or dimensions that do not fit.
    case encoderShape(what: String, expected: Int, actual: Int)
    /// The encoder itself failed; nothing of the batch was written.
    case encoderFailed(String)
    /// An earlier fsync of the log failed: what reached the disk is unknown, so the
    /// repository refuses further commits until it is reopened (and recovered).
    case needsReopen(path: String, cause: String)
    /// A query vector of the wrong length.
    case queryShape(expected: Int, actual: Int)
    /// The repository was closed.
    case closed(path: String)
    /// A field is too large for the log format.
    case tooLarge(what: String, limit: Int, actual: Int)
    /// The fact log is damaged with intact records after the damage: opening would drop
    /// acknowledged records, so it is refused, untouched, until the operator salvages it.
    case damagedLog(LogDamage)

    public var description: String {
        switch self {
        case .system(let e): return e.description
        case .locked(let p): return "\(p): repository is locked by another writer (flock)"
        case .badHeader(let p, let e, let a): return "\(p): bad header: expected \(e), found \(a)"
        case .badRecord(let p, let r, let o, let why): return "\(p): record \(r) at offset \(o): \(why)"
        case .badManifest(let p, let why): return "\(p): bad manifest: \(why)"
        case .encoderShape(let w, let e, let a): return "encoder returned \(w) of \(a) floats, expected \(e)"
        case .encoderFailed(let m): return "encoder failed: \(m) (nothing of the batch was written)"
        case .needsReopen(let p, let c): return "\(p): an earlier fsync failed (\(c)); reopen the repository to recover"
        case .queryShape(let e, let a): return "query has \(a) floats, expected \(e)"
        case .closed(let p): return "\(p): repository is closed"
        case .tooLarge(let w, let l, let a): return "\(w) is \(a) bytes, limit \(l)"
        case .damagedLog(let d):
            return "\(d). Refusing to open: that would drop acknowledged records. The log is untouched. "
                + "Stop every process using the repository, copy the directory as a backup, then salvage it "
                + "(`recipe repair --repository DIR`): every intact record is kept, each damaged range is saved in torn/ "
                + "and the damaged log is kept beside the new one; or restore the directory from a backup"
        }
    }

    /// The errno underneath, when a system call failed.
    public var errno: Errno? {
        if case .system(let e) = self { return e.errno }
        return nil
    }
}

/// Runs `body`, wrapping a `PosixError` into `StorageError.system`.
@inline(__always)
func posix<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as PosixError { throw StorageError.system(e) }
}
