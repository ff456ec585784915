// A memory-mapped matrix file: one page of header, then fixed-width rows.
// Header: "RCPMATX1", u32 version, u32 element kind (1 = f32, 2 = u64), u64 width
// (elements per row), u64 generation, u32 CRC-32C of those 32 bytes; zero padded to 4096
// so rows start page aligned. The file is grown with posix_fallocate (so writing through
// the mapping cannot hit ENOSPC, which would be SIGBUS) and remapped; older mappings stay
// valid for the snapshots that hold them. Rows reach the disk with msync(MS_SYNC).
import Glibc
import Posix

final class MatrixFile {
    enum Kind: UInt32 { case float32 = 1, uint64 = 2 }

    static let headerSize = 4096
    static let magic: [UInt8] = Array("RCPMATX1".utf8)

    let path: String
    let kind: Kind
    let width: Int
    let generation: UInt64
    private let fd: FileDescriptor
    /// The current mapping of the whole file.
    private(set) var region: MappedRegion
    /// Rows the file has room for.
    private(set) var capacity: Int

    var rowBytes: Int { width * 8 / (kind == .float32 ? 2 : 1) }

    private init(path: String, kind: Kind, width: Int, generation: UInt64, fd: FileDescriptor,
                 region: MappedRegion, capacity: Int) {
        self.path = path
        self.kind = kind
        self.width = width
        self.generation = generation
        self.fd = fd
        self.region = region
        self.capacity = capacity
    }

    static func header(kind: Kind, width: Int, generation: UInt64) -> [UInt8] {
        var w = ByteWriter()
        w.bytes = magic
        w.u32(1)
        w.u32(kind.rawValue)
        w.u64(UInt64(width))
        w.u64(generation)
        w.u32(CRC32C.checksum(w.bytes))
        return w.bytes + [UInt8](repeating: 0, count: headerSize - w.bytes.count)
    }

    /// Creates (truncating) a matrix file with room for `capacity` rows; header written and
    /// the file fsynced, so that it exists durably before any manifest names it.
    static func create(path: String, kind: Kind, width: Int, generation: UInt64, capacity: Int) throws -> MatrixFile {
        try posix {
            let fd = try FileDescriptor.open(path, O_RDWR | O_CREAT | O_TRUNC, mode: 0o644)
            try fd.writeAll(header(kind: kind, width: width, generation: generation), at: 0)
            let rowBytes = width * (kind == .float32 ? 4 : 8)
            let cap = max(1, capacity)
            try fd.allocate(offset: headerSize, length: cap * rowBytes)
            try fd.sync()
            let region = try MappedRegion(fd, length: headerSize + cap * rowBytes, writable: true)
            return MatrixFile(path: path, kind: kind, width: width, generation: generation, fd: fd,
                              region: region, capacity: cap)
        }
    }

    /// Opens an existing matrix file and checks it against what the manifest expects:
    /// header, kind, width, generation, and room for `rows` rows. Throws `badHeader` naming
    /// the difference (the repository then rebuilds the generation from the log).
    static func open(path: String, kind: Kind, width: Int, generation: UInt64, rows: Int) throws -> MatrixFile {
        guard FileSystem.exists(path) else {
            throw StorageError.badHeader(path: path, expected: "a matrix file", actual: "no file")
        }
        return try posix {
            let fd = try FileDescriptor.open(path, O_RDWR)
            let size = try fd.size()
            let head = try fd.read(count: headerSize, at: 0)
            let expected = header(kind: kind, width: width, generation: generation)
            guard head == expected else {
                throw StorageError.badHeader(path: path, expected: "kind \(kind) width \(width) generation \(generation)",
                                             actual: head.count < headerSize ? "\(head.count) header bytes" : "a different header")
            }
            let rowBytes = width * (kind == .float32 ? 4 : 8)
            let cap = (size - headerSize) / rowBytes
            guard cap >= rows, cap >= 1 else {
                throw StorageError.badHeader(path: path, expected: "room for \(rows) rows (\(headerSize + rows * rowBytes) bytes)",
                                             actual: "\(size) bytes")
            }
            let region = try MappedRegion(fd, length: headerSize + cap * rowBytes, writable: true)
            return MatrixFile(path: path, kind: kind, width: width, generation: generation, fd: fd,
                              region: region, capacity: cap)
        }
    }

    /// Grows the file (by half again, at least to `rows`) and remaps it. The blocks are
    /// allocated and the new size fdatasynced before the new mapping is used.
    func ensureCapacity(_ rows: Int) throws {
        guard rows > capacity else { return }
        let newCapacity = max(rows, capacity + capacity / 2, 64)
        try posix {
            try fd.allocate(offset: Self.headerSize, length: newCapacity * rowBytes)
            try fd.dataSync()
            region = try MappedRegion(fd, length: Self.headerSize + newCapacity * rowBytes, writable: true)
        }
        capacity = newCapacity
    }

    /// Address of row `row` in the current mapping.
    func row(_ row: Int) -> UnsafeMutableRawPointer {
        region.base + Self.headerSize + row * rowBytes
    }

    /// msync(MS_SYNC) of `rows`.
    func sync(rows: Range<Int>) throws {
        guard !rows.isEmpty else { return }
        try posix {
            try region.sync((Self.headerSize + rows.lowerBound * rowBytes)..<(Self.headerSize + rows.upperBound * rowBytes))
        }
    }

    /// fsync(2) of the file (data and size).
    func syncFile() throws { try posix { try fd.sync() } }

    func close() throws { try posix { try fd.close() } }
}
