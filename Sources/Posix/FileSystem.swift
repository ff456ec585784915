// Path-level calls: directory fsync, atomic replace, rename, unlink, mkdir, mkfifo, stat and
// lstat, directory listing. Each names the C call underneath and goes through `Syscall.run`.
import Glibc

public enum FileSystem {
    /// `NAME_MAX`: the longest name of one directory entry, in bytes (ext4, xfs, btrfs, tmpfs).
    public static let nameMax = 255

    /// `fsync(2)` on the directory itself, so that a create, rename or unlink inside it is
    /// durable (a renamed file's new name is lost in a crash until this returns).
    public static func syncDirectory(_ path: String) throws {
        let fd = try FileDescriptor.open(path, O_RDONLY | O_DIRECTORY)
        try fd.sync()
        try fd.close()
    }

    /// Replaces `path` with `bytes` so that a crash leaves either the old or the new file,
    /// never a mix: write `path.tmp`, `fsync`, `rename(2)` over `path`, `fsync` the directory.
    public static func atomicReplace(_ path: String, with bytes: [UInt8], mode: mode_t = 0o644) throws {
        let temp = path + ".tmp"
        do {
            let fd = try FileDescriptor.open(temp, O_WRONLY | O_CREAT | O_TRUNC, mode: mode)
            try fd.writeAll(bytes)
            try fd.sync()
            try fd.close()
            try rename(temp, to: path)
        } catch {
            try? unlink(temp)
            throw error
        }
        try syncDirectory(parent(of: path))
    }

    /// `rename(2)`.
    public static func rename(_ from: String, to: String) throws {
        _ = try Syscall.run(.rename, "rename", path: from + " -> " + to) { Glibc.rename(from, to) }
    }

    /// `link(2)`: a second name for the same file (atomic; fails with EEXIST).
    public static func link(_ existing: String, to new: String) throws {
        _ = try Syscall.run(.rename, "link", path: existing + " -> " + new) { Glibc.link(existing, new) }
    }

    /// `unlink(2)`.
    public static func unlink(_ path: String) throws {
        _ = try Syscall.run(.unlink, "unlink", path: path) { Glibc.unlink(path) }
    }

    /// `unlink(2)`, treating a missing file as success.
    public static func removeIfPresent(_ path: String) throws {
        do { try unlink(path) } catch let e as PosixError where e.errno == .noEntry {}
    }

    /// `rmdir(2)` (the directory must be empty).
    public static func removeDirectory(_ path: String) throws {
        _ = try Syscall.run(.unlink, "rmdir", path: path) { Glibc.rmdir(path) }
    }

    /// `mkdir(2)`; an existing directory is fine.
    public static func makeDirectory(_ path: String, mode: mode_t = 0o755) throws {
        do {
            _ = try Syscall.run(.mkdir, "mkdir", path: path) { Glibc.mkdir(path, mode) }
        } catch let e as PosixError where e.errno == .exists {
            guard isDirectory(path) else { throw e }
        }
    }

    /// `mkfifo(3)`; an existing FIFO is fine.
    public static func makeFIFO(_ path: String, mode: mode_t = 0o600) throws {
        do {
            _ = try Syscall.run(.mkfifo, "mkfifo", path: path) { Glibc.mkfifo(path, mode) }
        } catch let e as PosixError where e.errno == .exists {
            guard let st = try? status(path), (st.st_mode & S_IFMT) == S_IFIFO else { throw e }
        }
    }

    /// `stat(2)`.
    public static func status(_ path: String) throws -> stat {
        var st = stat()
        _ = try Syscall.run(.stat, "fstatat", path: path) { fstatat(AT_FDCWD, path, &st, 0) }
        return st
    }

    /// `lstat(2)` (`fstatat` with `AT_SYMLINK_NOFOLLOW`): a symbolic link is described
    /// itself, not the file it points to.
    public static func linkStatus(_ path: String) throws -> stat {
        var st = stat()
        _ = try Syscall.run(.stat, "fstatat", path: path) { fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) }
        return st
    }

    /// Whether the name is taken, by a dangling symbolic link too (`lstat(2)` succeeds):
    /// what a caller must ask before a `rename(2)` that would replace the entry.
    public static func entryExists(_ path: String) -> Bool {
        var st = stat()
        return fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0
    }

    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return fstatat(AT_FDCWD, path, &st, 0) == 0
    }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return fstatat(AT_FDCWD, path, &st, 0) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// `st_size`, or nil when the file does not exist.
    public static func size(_ path: String) -> Int? {
        var st = stat()
        return fstatat(AT_FDCWD, path, &st, 0) == 0 ? Int(st.st_size) : nil
    }

    /// The whole file, read with a `read(2)` loop.
    public static func readFile(_ path: String) throws -> [UInt8] {
        let fd = try FileDescriptor.openForReading(path)
        let bytes = try fd.readAll()
        try fd.close()
        return bytes
    }

    /// Names in a directory (`opendir(3)`/`readdir(3)`), without "." and "..", sorted.
    public static func list(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else {
            throw PosixError(call: "opendir", path: path, errno: .current)
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// The directory part of `path` ("." for a bare name).
    public static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    /// The last path component.
    public static func baseName(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}
