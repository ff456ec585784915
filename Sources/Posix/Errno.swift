// `Errno`: a C `errno` value as a Swift value type, after apple/swift-system's `Errno`.
// Every failing call in this module throws `PosixError`, which carries one of these.
import Glibc

/// A POSIX error number (`errno`), with names for the values the project meets.
public struct Errno: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The calling thread's current `errno`.
    public static var current: Errno { Errno(rawValue: Glibc.errno) }

    public static let interrupted = Errno(rawValue: EINTR)
    public static let noSpace = Errno(rawValue: ENOSPC)
    public static let io = Errno(rawValue: EIO)
    public static let wouldBlock = Errno(rawValue: EAGAIN)
    public static let noEntry = Errno(rawValue: ENOENT)
    public static let exists = Errno(rawValue: EEXIST)
    public static let badDescriptor = Errno(rawValue: EBADF)
    public static let invalidArgument = Errno(rawValue: EINVAL)
    public static let notSupported = Errno(rawValue: EOPNOTSUPP)
    public static let brokenPipe = Errno(rawValue: EPIPE)
    public static let noDevice = Errno(rawValue: ENXIO)
    public static let permissionDenied = Errno(rawValue: EACCES)
    public static let notPermitted = Errno(rawValue: EPERM)
    public static let symbolicLinkLoop = Errno(rawValue: ELOOP)
    public static let nameTooLong = Errno(rawValue: ENAMETOOLONG)
    public static let quotaExceeded = Errno(rawValue: EDQUOT)

    /// `strerror(3)` text, e.g. "No space left on device".
    public var description: String {
        guard let s = strerror(rawValue) else { return "errno \(rawValue)" }
        return String(cString: s)
    }
}

/// The one error type of the Posix module: which call failed, on which path (when known),
/// and with which `errno`.
public struct PosixError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The C function, e.g. "fsync".
    public let call: String
    /// The file the call was about, when the caller knew it.
    public let path: String?
    public let errno: Errno

    public init(call: String, path: String?, errno: Errno) {
        self.call = call
        self.path = path
        self.errno = errno
    }

    public var description: String {
        if let path { return "\(call)(\(path)): \(errno) (errno \(errno.rawValue))" }
        return "\(call): \(errno) (errno \(errno.rawValue))"
    }
}
