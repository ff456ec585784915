// `FileDescriptor`: the one owner of an open file descriptor. It closes on every path
// (explicit `close()`, or `deinit` when the owner goes away after an error), and every
// operation goes through `Syscall.run`, so EINTR is retried and faults can be injected.
import Glibc

public final class FileDescriptor: @unchecked Sendable {
    /// The raw descriptor; -1 once closed.
    public private(set) var rawValue: Int32
    /// The path it was opened with, for error messages.
    public let path: String

    public init(adopting rawValue: Int32, path: String) {
        self.rawValue = rawValue
        self.path = path
    }

    deinit { if rawValue >= 0 { _ = Glibc.close(rawValue) } }

    // MARK: open / close

    /// `open(2)` with `O_CLOEXEC` added.
    public static func open(_ path: String, _ flags: Int32, mode: mode_t = 0o644) throws -> FileDescriptor {
        let fd = try Syscall.run(.open, "open", path: path) { Glibc.open(path, flags | O_CLOEXEC, mode) }
        return FileDescriptor(adopting: fd, path: path)
    }

    /// `open(path, O_RDONLY)`.
    public static func openForReading(_ path: String) throws -> FileDescriptor {
        try open(path, O_RDONLY)
    }

    /// `open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY)`, for files whose writer is
    /// not trusted: a symbolic link as the last component fails with ELOOP instead of being
    /// followed, a FIFO opens without waiting for a writer, and a terminal never becomes the
    /// controlling one. The descriptor may still be anything but a link: check `status()`.
    public static func openForReadingNoFollow(_ path: String) throws -> FileDescriptor {
        try open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY)
    }

    /// `close(2)`. Not retried on EINTR: on Linux the descriptor is released either way.
    public func close() throws {
        guard rawValue >= 0 else { return }
        let fd = rawValue
        rawValue = -1
        if let plan = Syscall.faults, let e = plan.injection(for: .close) {
            _ = Glibc.close(fd)
            throw PosixError(call: "close", path: path, errno: e)
        }
        if Glibc.close(fd) == -1 {
            let e = Errno.current
            if e != .interrupted { throw PosixError(call: "close", path: path, errno: e) }
        }
    }

    // MARK: read

    /// `read(2)` once; returns the byte count (0 at end of file).
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        try Syscall.run(.read, "read", path: path) { Glibc.read(rawValue, buffer.baseAddress, buffer.count) }
    }

    /// `pread(2)` once at `offset`.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws -> Int {
        try Syscall.run(.read, "pread", path: path) { Glibc.pread(rawValue, buffer.baseAddress, buffer.count, off_t(offset)) }
    }

    /// Reads up to `count` bytes at `offset` with a `pread(2)` loop; fewer only at end of file.
    public func read(count: Int, at offset: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        try out.withUnsafeMutableBytes { buf in
            while done < count {
                let n = try read(into: UnsafeMutableRawBufferPointer(rebasing: buf[done...]), at: offset + done)
                if n == 0 { break }
                done += n
            }
        }
        out.removeLast(count - done)
        return out
    }

    /// Reads from the current position to end of file with a `read(2)` loop.
    public func readAll() throws -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = try chunk.withUnsafeMutableBytes { try read(into: $0) }
            if n == 0 { return out }
            out.append(contentsOf: chunk[0..<n])
        }
    }

    // MARK: write

    /// `write(2)` once; may write fewer bytes than given.
    public func write(_ buffer: UnsafeRawBufferPointer) throws -> Int {
        let n = Syscall.writeLimit(buffer.count)
        return try Syscall.run(.write, "write", path: path) { Glibc.write(rawValue, buffer.baseAddress, n) }
    }

    /// `pwrite(2)` once at `offset`.
    public func write(_ buffer: UnsafeRawBufferPointer, at offset: Int) throws -> Int {
        let n = Syscall.writeLimit(buffer.count)
        return try Syscall.run(.write, "pwrite", path: path) { Glibc.pwrite(rawValue, buffer.baseAddress, n, off_t(offset)) }
    }

    /// Writes every byte with a `write(2)` loop (short writes are continued, EINTR retried).
    public func writeAll(_ buffer: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < buffer.count {
            done += try write(UnsafeRawBufferPointer(rebasing: buffer[done...]))
        }
    }

    public func writeAll(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try writeAll($0) }
    }

    /// Writes every byte at `offset` with a `pwrite(2)` loop.
    public func writeAll(_ buffer: UnsafeRawBufferPointer, at offset: Int) throws {
        var done = 0
        while done < buffer.count {
            done += try write(UnsafeRawBufferPointer(rebasing: buffer[done...]), at: offset + done)
        }
    }

    public func writeAll(_ bytes: [UInt8], at offset: Int) throws {
        try bytes.withUnsafeBytes { try writeAll($0, at: offset) }
    }

    // MARK: durability and size

    /// `fsync(2)`: data and metadata reach stable storage.
    public func sync() throws {
        _ = try Syscall.run(.fsync, "fsync", path: path) { Glibc.fsync(rawValue) }
    }

    /// `fdatasync(2)`: data (and the size, if it changed) reach stable storage.
    public func dataSync() throws {
        _ = try Syscall.run(.fdatasync, "fdatasync", path: path) { Glibc.fdatasync(rawValue) }
    }

    /// `ftruncate(2)`.
    public func truncate(to size: Int) throws {
        _ = try Syscall.run(.ftruncate, "ftruncate", path: path) { Glibc.ftruncate(rawValue, off_t(size)) }
    }

    /// `posix_fallocate(3)` (`fallocate(2)` mode 0): reserves blocks so that later writes
    /// through a mapping cannot hit ENOSPC (which would be SIGBUS). `posix_fallocate`
    /// returns the error number instead of setting `errno`, hence the manual funnel here.
    public func allocate(offset: Int, length: Int) throws {
        while true {
            var rc: Int32
            if let plan = Syscall.faults, let e = plan.injection(for: .fallocate) {
                rc = e.rawValue
            } else {
                rc = Glibc.posix_fallocate(rawValue, off_t(offset), off_t(length))
            }
            if rc == 0 { return }
            if rc == EINTR { continue }
            throw PosixError(call: "posix_fallocate", path: path, errno: Errno(rawValue: rc))
        }
    }

    /// `posix_fadvise(POSIX_FADV_DONTNEED)` over the whole file: its clean pages leave the
    /// page cache, so the next read comes from the disk (benchmarks of cold reads; call
    /// `dataSync` first, dirty pages stay). Like `posix_fallocate`, it returns the error.
    public func dropCachedPages() throws {
        let rc = Glibc.posix_fadvise(rawValue, 0, 0, Int32(POSIX_FADV_DONTNEED))
        if rc != 0 { throw PosixError(call: "posix_fadvise", path: path, errno: Errno(rawValue: rc)) }
    }

    /// `fstat(2)`: the open file itself, whatever its path names by now.
    public func status() throws -> stat {
        var st = stat()
        _ = try Syscall.run(.stat, "fstat", path: path) { Glibc.fstat(rawValue, &st) }
        return st
    }

    /// `fstatvfs(3)`: bytes of the file's file system that an unprivileged writer may still
    /// allocate (f_bavail × f_frsize).
    public func availableBytes() throws -> Int64 {
        var fs = statvfs()
        _ = try Syscall.run(.stat, "fstatvfs", path: path) { Glibc.fstatvfs(rawValue, &fs) }
        return Int64(fs.f_bavail) * Int64(fs.f_frsize)
    }
    /// `fstat(2)`'s `st_size`.
    public func size() throws -> Int { Int(try status().st_size) }

    /// `lseek(2)`; returns the new offset.
    @discardableResult
    public func seek(to offset: Int, whence: Int32 = SEEK_SET) throws -> Int {
        Int(try Syscall.run(.lseek, "lseek", path: path) { Glibc.lseek(rawValue, off_t(offset), whence) })
    }

    // MARK: locks and flags

    /// `flock(LOCK_EX | LOCK_NB)`: returns false when another open file description holds
    /// the lock (EWOULDBLOCK) instead of waiting.
    public func tryLockExclusive() throws -> Bool {
        do {
            _ = try Syscall.run(.flock, "flock", path: path) { c_flock(rawValue, LOCK_EX | LOCK_NB) }
            return true
        } catch let e as PosixError where e.errno == .wouldBlock {
            return false
        }
    }

    /// `flock(LOCK_UN)`.
    public func unlock() throws {
        _ = try Syscall.run(.flock, "flock", path: path) { c_flock(rawValue, LOCK_UN) }
    }

    /// `fcntl(F_SETFL, flags | O_NONBLOCK)` or without it.
    public func setNonBlocking(_ on: Bool) throws {
        let flags = try Syscall.run(.open, "fcntl", path: path) { fcntl_getfl(rawValue) }
        let new = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK
        _ = try Syscall.run(.open, "fcntl", path: path) { fcntl_setfl(rawValue, new) }
    }
}

// `fcntl` is variadic in C, which Swift imports only through these fixed-arity helpers.
private func fcntl_getfl(_ fd: Int32) -> Int32 { Glibc.fcntl(fd, F_GETFL) }
private func fcntl_setfl(_ fd: Int32, _ flags: Int32) -> Int32 { Glibc.fcntl(fd, F_SETFL, flags) }

// `flock(2)`: the struct of the same name hides the function from Swift.
@_silgen_name("flock") private func c_flock(_ fd: Int32, _ operation: Int32) -> Int32
