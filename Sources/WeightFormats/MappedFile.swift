// A read-only memory mapping of a whole file: the weights are used in place (views into
// the mapping), never copied, as llama.cpp does with mmap. `bytes` is valid as long as the
// MappedFile lives; it is unmapped in deinit.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public final class MappedFile: @unchecked Sendable {
    /// The path the file was opened with (used in every error message).
    public let path: String
    /// The whole file. Empty for an empty file.
    public let bytes: UnsafeRawBufferPointer

    /// How the memory behind `bytes` is released.
    private enum Owner { case mapping, heap, none }
    private let owner: Owner

    /// Maps `path` read-only (`open(O_RDONLY)` + `fstat` + `mmap(PROT_READ, MAP_PRIVATE)`).
    /// The descriptor is closed right after mapping; the mapping stays valid.
    public init(path: String) throws {
        self.path = path
        var fd: Int32
        repeat { fd = open(path, O_RDONLY | O_CLOEXEC) } while fd < 0 && errno == EINTR
        guard fd >= 0 else { throw WeightFormatError.io(path: path, operation: "open", errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw WeightFormatError.io(path: path, operation: "fstat", errno: errno) }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw WeightFormatError.io(path: path, operation: "open (not a regular file)", errno: EINVAL)
        }
        let size = Int(st.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            owner = .none
            return
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0),
              p != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw WeightFormatError.io(path: path, operation: "mmap", errno: errno)
        }
        bytes = UnsafeRawBufferPointer(start: p, count: size)
        owner = .mapping
    }

    /// An in-memory "file" holding a copy of `contents`: lets tests and tools parse bytes
    /// they built or damaged without touching the disk. `path` only names it in errors.
    public init(copying contents: [UInt8], path: String = "<memory>") {
        self.path = path
        if contents.isEmpty {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            owner = .none
            return
        }
        // 64-byte alignment so that aligned tensor offsets are aligned in memory too.
        let p = UnsafeMutableRawPointer.allocate(byteCount: contents.count, alignment: 64)
        contents.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        bytes = UnsafeRawBufferPointer(start: p, count: contents.count)
        owner = .heap
    }

    deinit {
        guard let base = bytes.baseAddress else { return }
        switch owner {
        case .mapping: munmap(UnsafeMutableRawPointer(mutating: base), bytes.count)
        case .heap: UnsafeMutableRawPointer(mutating: base).deallocate()
        case .none: break
        }
    }
}
