// `WorkerClient` against a scripted server (no models): a worker that refuses a
// connection ("busy", "forbidden") replies at once and closes, possibly before the client
// has sent its request. The client must still report that reply, not the broken pipe.
// A worker that accepts and never answers, or never accepts, costs the client its
// timeout, and `recipe health` then exits 69.
import Foundation
import Glibc
import Posix
import TestSupport
import Testing
import Worker
import WorkerAPI

struct WorkerClientTests {
    @Test func replyOfAServerThatClosedBeforeTheRequestIsRead() throws {
        let dir = try Fixtures.temporaryDirectory("client")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("s.sock").path
        let listener = try UnixSocket.listen(path: path)
        let closed = DispatchSemaphore(value: 0)
        Thread {
            // accept(2) on a blocking listener, then the refusal and close, as SocketServer does.
            var peer: FileDescriptor?
            while peer == nil { peer = try? UnixSocket.accept(listener); if peer == nil { usleep(1000) } }
            try? UnixSocket.sendAll(peer!, Array(#"{"ok":false,"error":{"code":"forbidden","message":"no"}}"#.utf8) + [0x0A])
            try? peer!.close()
            closed.signal()
        }.start()
        let client = try WorkerClient(path: path, timeoutSeconds: 10)
        defer { client.close() }
        closed.wait()
        // The peer is gone: the send fails with EPIPE, the reply is still readable.
        let reply = try client.request(["op": "health"])
        #expect(reply["ok"] as? Bool == false)
        #expect((reply["error"] as? [String: Any])?["code"] as? String == "forbidden", "\(reply)")

        // Nothing to read after the broken pipe: the error is the send's, not a hang.
        #expect(throws: PosixError.self) { try client.request(["op": "health"]) }
        try listener.close()
    }

    /// Runs `body` on a thread and waits for it at most `seconds`: a client without a
    /// timeout would block forever, which must fail the test rather than hang it.
    func within<T: Sendable>(_ seconds: Double, _ body: @escaping @Sendable () throws -> T) -> Result<T, Error>? {
        nonisolated(unsafe) var result: Result<T, Error>?
        let done = DispatchSemaphore(value: 0)
        Thread { result = Result { try body() }; done.signal() }.start()
        return done.wait(timeout: .now() + seconds) == .timedOut ? nil : result
    }

    @Test func aWorkerThatNeverAnswersCostsTheTimeout() throws {
        let dir = try Fixtures.temporaryDirectory("client-timeout")
        defer { try? FileManager.default.removeItem(at: dir) }
        // Listening, never accepting (a hung worker): the request waits in the socket.
        let path = dir.appendingPathComponent("s.sock").path
        let listener = try UnixSocket.listen(path: path, backlog: 0)
        defer { try? listener.close() }
        let outcome = within(60) { _ = try WorkerClient(path: path, timeoutSeconds: 0.5).request(["op": "health"]) }
        guard case .failure(let error)? = outcome else { Issue.record("no timeout: \(String(describing: outcome))"); return }
        guard case let WorkerAPIError.timedOut(p, seconds, what) = error else { Issue.record("\(error)"); return }
        #expect(p == path && seconds == 0.5 && what == "a reply", "\(error)")

        // With the backlog full, connect(2) itself blocks: bounded by the same timeout.
        let first = within(60) { try (0..<4).map { _ in try WorkerClient(path: path, timeoutSeconds: 0.5) } }
        guard case .failure(let full)? = first, case WorkerAPIError.timedOut(_, _, let waited) = full else {
            Issue.record("connect to a full backlog did not time out: \(String(describing: first))"); return
        }
        #expect(waited.contains("accept"), "\(full)")
    }

    @Test func healthOfAHungWorkerExits69WithinItsTimeout() throws {
        let binary = try #require(IngestCrashTests.recipeBinary(), "no recipe binary: swift build -c release --product recipe")
        let dir = try Fixtures.temporaryDirectory("health-timeout")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("s.sock").path
        let listener = try UnixSocket.listen(path: path)
        defer { try? listener.close() }
        var (code, text) = try IngestCrashTests.shell("'\(binary)' health --socket '\(path)' --timeout 1", binary: binary)
        #expect(code == 69, "\(code): \(text)")
        #expect(text.contains("did not answer within 1 s") && text.contains("--timeout"), "\(text)")
        (code, text) = try IngestCrashTests.shell("'\(binary)' health --socket '\(path)' --timeout soon", binary: binary)
        #expect(code == 2 && text.contains("--timeout expects a positive number"), "\(code): \(text)")
        for command in ["health", "stats", "ask", "add", "retract"] {
            (code, text) = try IngestCrashTests.shell("'\(binary)' \(command) --help", binary: binary)
            #expect(code == 0 && text.contains("--timeout SECONDS") && text.contains("exit 69"), "\(command): \(text)")
        }
        (code, text) = try IngestCrashTests.shell("'\(binary)' health --help", binary: binary)
        #expect(text.contains("default 5 s"), "\(text)")
    }
}
