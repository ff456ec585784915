// The Posix pieces of the query socket and of graceful shutdown: Unix stream sockets
// (permissions, stale files, EPIPE instead of SIGPIPE) and signals through signalfd.
import Glibc
import Posix
import Testing

@Suite struct SocketSignalTests {
    @Test func listenAcceptConnectAndSend() throws {
        let dir = try temporaryPath("sock")
        let path = dir + "/worker.sock"
        let listener = try UnixSocket.listen(path: path, mode: 0o600)
        #expect(try FileSystem.status(path).st_mode & 0o777 == 0o600)
        #expect(try UnixSocket.accept(listener) == nil)
        let client = try UnixSocket.connect(path: path)
        _ = try Poll.wait([(listener.rawValue, Poll.readable)], timeoutMilliseconds: 1000)
        let server = try #require(try UnixSocket.accept(listener))
        try UnixSocket.sendAll(client, Array("{\"op\":\"health\"}\n".utf8))
        var buf = [UInt8](repeating: 0, count: 64)
        let n = try buf.withUnsafeMutableBytes { try server.read(into: $0) }
        #expect(String(decoding: buf[0..<n], as: UTF8.self) == "{\"op\":\"health\"}\n")
        // A second worker on the same live socket is refused.
        #expect(throws: PosixError.self) { _ = try UnixSocket.listen(path: path) }
        // The client goes away: sending fails with EPIPE, the process lives on.
        try client.close()
        var failed: PosixError?
        for _ in 0..<10 where failed == nil {
            do { try UnixSocket.sendAll(server, [UInt8](repeating: 65, count: 65536)) } catch let e as PosixError { failed = e }
        }
        #expect(failed?.errno == .brokenPipe || failed?.errno == Errno(rawValue: ECONNRESET))
    }

    @Test func staleSocketFileIsReplacedButOtherFilesAreNot() throws {
        let dir = try temporaryPath("sock")
        let path = dir + "/s"
        do { let l = try UnixSocket.listen(path: path); try l.close() }
        #expect(FileSystem.exists(path))  // left behind, nobody listening
        let again = try UnixSocket.listen(path: path)
        _ = again
        try FileSystem.atomicReplace(dir + "/plain", with: [1])
        #expect(throws: PosixError.self) { _ = try UnixSocket.listen(path: dir + "/plain") }
        #expect(throws: PosixError.self) { _ = try UnixSocket.listen(path: dir + "/" + String(repeating: "x", count: 120)) }
    }

    @Test func signalsArriveThroughTheDescriptor() throws {
        let signals = try SignalDescriptor(blocking: [SIGUSR1, SIGUSR2])
        #expect(try signals.pending().isEmpty)
        pthread_kill(pthread_self(), SIGUSR1)
        pthread_kill(pthread_self(), SIGUSR2)
        let ready = try Poll.wait([(signals.descriptor.rawValue, Poll.readable)], timeoutMilliseconds: 1000)
        #expect(ready[0] & Poll.readable != 0)
        #expect(try signals.pending().sorted() == [SIGUSR1, SIGUSR2].sorted())
        #expect(try signals.pending().isEmpty)
    }
}
