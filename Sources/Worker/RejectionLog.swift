// The rejected lines of a stream source (a named pipe, standard input), kept where an
// operator can read them. A stream cannot be read twice, so unlike an inbox file (whose
// rejected lines are copied out of the file when it is moved aside) every rejected line is
// written here as it is judged: "source:line: reason", then the line itself after a tab
// (an over-long line: its first `maximumLineBytes`), like a compiler's log. Appended and
// fsynced once per time step (a crash before that loses at most the step's rejections,
// which the log's `fact_rejected` lines have shown); rotated at `maximumBytes`:
// `<name>` -> `<name>.1` -> ... -> `<name>.<keep>`, the oldest dropped.
import Glibc
import Posix

public final class RejectionLog: @unchecked Sendable {
    public let path: String
    /// Size at which the file is rotated before the next append.
    public var maximumBytes: Int
    /// Rotated files kept (`.1` newest); 0 keeps none.
    public var keep: Int
    /// Opened at the first rejection, so that a source that never rejects leaves no file.
    private var fd: FileDescriptor?
    private var size = 0

    public init(path: String, maximumBytes: Int = 16 << 20, keep: Int = 3) {
        self.path = path
        self.maximumBytes = maximumBytes
        self.keep = keep
    }

    /// The file name for a stream source at `path` ("feed.pipe" -> "feed.pipe.rejections"),
    /// fitted into NAME_MAX with room for the rotation's ".N". `others`: the paths of the
    /// other sources sharing the directory; a source whose base name another one has too
    /// gets a hash of its whole path, so that no two share a file.
    public static func fileName(forSource path: String, among others: [String] = []) -> String {
        var base = FileSystem.baseName(path)
        if others.contains(where: { $0 != path && FileSystem.baseName($0) == base }) {
            base += "-" + String(CRC32C.checksum(Array(path.utf8)), radix: 16)
        }
        return SideFileName.fitted(base, suffixes: [".rejections"])[0]
    }

    /// Appends `rejections` and fsyncs the file, rotating it first when it would pass
    /// `maximumBytes`.
    public func append(_ rejections: [FactRejection]) throws {
        guard !rejections.isEmpty else { return }
        var bytes: [UInt8] = []
        for r in rejections {
            bytes += Array((r.description + "\n").utf8)
            if let text = r.text { bytes += [0x09] + text + [0x0A] }
        }
        if size > 0 && size + bytes.count > maximumBytes { try rotate() }
        let fd = try openFile()
        try fd.writeAll(bytes)
        size += bytes.count
        try fd.sync()
    }

    public func close() throws {
        try fd?.close()
        fd = nil
    }

    private func openFile() throws -> FileDescriptor {
        if let fd { return fd }
        // O_NOFOLLOW: a link planted at the name must not redirect the worker's writes.
        let opened = try FileDescriptor.open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW, mode: 0o640)
        size = try opened.size()
        fd = opened
        return opened
    }

    /// `<name>.<keep-1>` -> `<name>.<keep>`, ..., `<name>` -> `<name>.1` (each rename(2)
    /// replaces the older file), then a fresh `<name>` at the next append. A file an
    /// operator removed meanwhile is simply started again.
    private func rotate() throws {
        try close()
        if keep > 0 {
            for n in stride(from: keep - 1, through: 1, by: -1) where FileSystem.entryExists(path + ".\(n)") {
                try FileSystem.rename(path + ".\(n)", to: path + ".\(n + 1)")
            }
            do { try FileSystem.rename(path, to: path + ".1") } catch let e as PosixError where e.errno == .noEntry {}
        } else {
            try FileSystem.removeIfPresent(path)
        }
        try FileSystem.syncDirectory(FileSystem.parent(of: path))
        size = 0
    }
}
