// `MappedRegion`: one `mmap(2)` mapping, unmapped when the last owner lets go. Readers
// keep a region alive as long as they look at it, so a writer can map a larger or a
// compacted file next to it without pulling memory out from under them.
import Glibc

public final class MappedRegion: @unchecked Sendable {
    /// Start of the mapping (page aligned).
    public let base: UnsafeMutableRawPointer
    /// Mapped length in bytes.
    public let length: Int
    public let path: String
    public let writable: Bool

    /// `mmap(2)` of `length` bytes at file offset `offset` (a multiple of the page size),
    /// `MAP_SHARED`, read-only or read-write. The file must be at least that long: touching
    /// a page past end of file is SIGBUS.
    public init(_ fd: FileDescriptor, length: Int, offset: Int = 0, writable: Bool) throws {
        guard length > 0 else {
            throw PosixError(call: "mmap", path: fd.path, errno: .invalidArgument)
        }
        if let plan = Syscall.faults, let e = plan.injection(for: .mmap) {
            throw PosixError(call: "mmap", path: fd.path, errno: e)
        }
        let prot = writable ? (PROT_READ | PROT_WRITE) : PROT_READ
        let p = Glibc.mmap(nil, length, prot, MAP_SHARED, fd.rawValue, off_t(offset))
        guard let p, p != MAP_FAILED else {
            throw PosixError(call: "mmap", path: fd.path, errno: .current)
        }
        self.base = p
        self.length = length
        self.path = fd.path
        self.writable = writable
    }

    deinit { Glibc.munmap(base, length) }

    /// `msync(MS_SYNC)` of the pages covering `range` (bytes): returns once they are on
    /// stable storage.
    public func sync(_ range: Range<Int>) throws {
        guard !range.isEmpty else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (range.lowerBound / page) * page
        let end = min(length, range.upperBound)
        _ = try Syscall.run(.msync, "msync", path: path) { Glibc.msync(base + start, end - start, MS_SYNC) }
    }

    /// `msync(MS_SYNC)` of the whole mapping.
    public func sync() throws { try sync(0..<length) }

    /// The page size (`sysconf(_SC_PAGESIZE)`).
    public static let pageSize: Int = Int(sysconf(Int32(_SC_PAGESIZE)))
}
