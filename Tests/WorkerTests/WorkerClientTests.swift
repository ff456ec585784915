// `WorkerClient` against a scripted server (no models): a worker that refuses a
// connection ("busy", "forbidden") replies at once and closes, possibly before the client
// has sent its request. The client must still report that reply, not the broken pipe.
import Foundation
import Glibc
import Posix
import TestSupport
import Testing
import Worker

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
}
