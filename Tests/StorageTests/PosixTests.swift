// The Posix layer: the syscall funnel (EINTR retry, injected errors, short writes), the
// file descriptor owner, atomic replace, flock, mmap, FIFOs, poll and inotify.
import Foundation
import Glibc
import Posix
import Testing

@Suite struct PosixTests {
    @Test func writeAllContinuesShortWritesAndRetriesEINTR() throws {
        let dir = try temporaryPath("posix")
        let path = dir + "/f"
        let bytes = (0..<1000).map { UInt8($0 % 251) }
        let plan = FaultPlan().fail(.write, onCall: 2, times: 3, with: .interrupted)
        plan.maximumWriteBytes = 7
        try plan.run {
            let fd = try FileDescriptor.open(path, O_WRONLY | O_CREAT | O_TRUNC)
            try fd.writeAll(bytes)
            try fd.close()
        }
        #expect(plan.calls(.write) >= 1000 / 7 + 3)
        #expect(try FileSystem.readFile(path) == bytes)
    }

    @Test func injectedErrorsNameCallPathAndErrno() throws {
        let dir = try temporaryPath("posix")
        let path = dir + "/f"
        let fd = try FileDescriptor.open(path, O_WRONLY | O_CREAT | O_TRUNC)
        let plan = FaultPlan().fail(.fsync, with: .io).fail(.write, onCall: 2, with: .noSpace)
        try plan.run {
            try fd.writeAll([1, 2, 3])
            #expect(throws: PosixError(call: "write", path: path, errno: .noSpace)) { try fd.writeAll([4]) }
            #expect(throws: PosixError(call: "fsync", path: path, errno: .io)) { try fd.sync() }
            try fd.sync()  // only the first fsync was scripted to fail
        }
        // Outside the plan nothing is injected.
        try fd.sync()
        #expect(PosixError(call: "fsync", path: path, errno: .io).description.contains("Input/output error"))
    }

    @Test func realErrnoIsReported() throws {
        do {
            _ = try FileDescriptor.openForReading("/nonexistent/dir/file")
            Issue.record("open of a missing file succeeded")
        } catch let e as PosixError {
            #expect(e.errno == .noEntry)
            #expect(e.call == "open")
        }
    }

    @Test func atomicReplaceLeavesOldOrNew() throws {
        let dir = try temporaryPath("posix")
        let path = dir + "/m"
        try FileSystem.atomicReplace(path, with: Array("old".utf8))
        let plan = FaultPlan().fail(.fsync, with: .io)
        #expect(throws: PosixError.self) { try plan.run { try FileSystem.atomicReplace(path, with: Array("new".utf8)) } }
        #expect(try FileSystem.readFile(path) == Array("old".utf8))
        #expect(!FileSystem.exists(path + ".tmp"))
        try FileSystem.atomicReplace(path, with: Array("new".utf8))
        #expect(try FileSystem.readFile(path) == Array("new".utf8))
    }

    @Test func flockExcludesASecondWriter() throws {
        let dir = try temporaryPath("posix")
        let a = try FileDescriptor.open(dir + "/LOCK", O_RDWR | O_CREAT)
        let b = try FileDescriptor.open(dir + "/LOCK", O_RDWR | O_CREAT)
        #expect(try a.tryLockExclusive())
        #expect(try !b.tryLockExclusive())
        try a.close()
        #expect(try b.tryLockExclusive())
    }

    @Test func mappedRegionWritesReachTheFile() throws {
        let dir = try temporaryPath("posix")
        let path = dir + "/map"
        let fd = try FileDescriptor.open(path, O_RDWR | O_CREAT | O_TRUNC)
        try fd.allocate(offset: 0, length: 8192)
        #expect(try fd.size() == 8192)
        do {
            let region = try MappedRegion(fd, length: 8192, writable: true)
            region.base.storeBytes(of: 0xDEAD_BEEF, toByteOffset: 4100, as: UInt32.self)
            try region.sync(4100..<4104)
        }
        let back = try fd.read(count: 4, at: 4100)
        #expect(back == [0xEF, 0xBE, 0xAD, 0xDE])
        let plan = FaultPlan().fail(.mmap, with: .noSpace)
        #expect(throws: PosixError.self) { try plan.run { _ = try MappedRegion(fd, length: 8192, writable: true) } }
        #expect(throws: PosixError.self) { _ = try MappedRegion(fd, length: 0, writable: false) }
    }

    @Test func allocateReportsInjectedENOSPC() throws {
        let dir = try temporaryPath("posix")
        let fd = try FileDescriptor.open(dir + "/a", O_RDWR | O_CREAT | O_TRUNC)
        let plan = FaultPlan().fail(.fallocate, with: .noSpace)
        #expect(throws: PosixError(call: "posix_fallocate", path: dir + "/a", errno: .noSpace)) {
            try plan.run { try fd.allocate(offset: 0, length: 4096) }
        }
        #expect(try fd.size() == 0)
    }

    @Test func fifoPollAndRead() throws {
        let dir = try temporaryPath("posix")
        let path = dir + "/pipe"
        try FileSystem.makeFIFO(path)
        try FileSystem.makeFIFO(path)  // existing FIFO is fine
        let reader = try FileDescriptor.open(path, O_RDONLY | O_NONBLOCK)
        let writer = try FileDescriptor.open(path, O_WRONLY | O_NONBLOCK)
        try writer.writeAll(Array("hello\n".utf8))
        let ready = try Poll.wait([(reader.rawValue, Poll.readable)], timeoutMilliseconds: 1000)
        #expect(ready[0] & Poll.readable != 0)
        var buf = [UInt8](repeating: 0, count: 16)
        let n = try buf.withUnsafeMutableBytes { try reader.read(into: $0) }
        #expect(Array(buf[0..<n]) == Array("hello\n".utf8))
        try writer.close()
        let hup = try Poll.wait([(reader.rawValue, Poll.readable)], timeoutMilliseconds: 1000)
        #expect(hup[0] & Poll.hangUp != 0)
        // A pipe has no page cache to drop: the error names the call and the path.
        #expect { try reader.dropCachedPages() } throws: { e in
            let p = e as? PosixError
            return p?.errno == Errno(rawValue: ESPIPE) && "\(e)".contains("posix_fadvise") && "\(e)".contains(path)
        }
    }

    @Test func droppedPagesLeaveTheFileAsItWas() throws {
        let path = try temporaryPath("posix") + "/f"
        let bytes = (0..<100_000).map { UInt8($0 % 253) }
        let fd = try FileDescriptor.open(path, O_RDWR | O_CREAT | O_TRUNC)
        try fd.writeAll(bytes)
        try fd.dataSync()
        try fd.dropCachedPages()
        #expect(try fd.read(count: bytes.count, at: 0) == bytes)
        try fd.close()
    }

    @Test func inotifyReportsCloseWriteAndMovedTo() throws {
        let dir = try temporaryPath("posix")
        let inotify = try Inotify()
        try inotify.watch(dir)
        #expect(try inotify.readEvents().isEmpty)
        let fd = try FileDescriptor.open(dir + "/a.jsonl", O_WRONLY | O_CREAT)
        try fd.writeAll([1])
        try fd.close()
        try FileSystem.atomicReplace(dir + "/b.txt", with: [2])
        _ = try Poll.wait([(inotify.descriptor.rawValue, Poll.readable)], timeoutMilliseconds: 1000)
        let events = try inotify.readEvents()
        #expect(events.contains { $0.name == "a.jsonl" && $0.isCloseWrite })
        #expect(events.contains { $0.name == "b.txt" && $0.isMovedTo })
    }

    @Test func listAndPathHelpers() throws {
        let dir = try temporaryPath("posix")
        try FileSystem.atomicReplace(dir + "/b", with: [])
        try FileSystem.atomicReplace(dir + "/a", with: [])
        try FileSystem.makeDirectory(dir + "/sub")
        try FileSystem.makeDirectory(dir + "/sub")
        #expect(try FileSystem.list(dir) == ["a", "b", "sub"])
        #expect(FileSystem.parent(of: "/x/y/z") == "/x/y")
        #expect(FileSystem.baseName("/x/y/z") == "z")
        try FileSystem.removeIfPresent(dir + "/a")
        try FileSystem.removeIfPresent(dir + "/a")
        #expect(!FileSystem.exists(dir + "/a"))
    }
}
