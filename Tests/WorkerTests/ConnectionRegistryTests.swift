// `ConnectionRegistry` and `ClientConnection` on socket pairs (no worker): which connection
// makes room at `limits.maxClients`, when a newcomer is refused, which connections a reload
// of `socket.allowedUIDs` closes, and how a connection's thread learns of it.
import Foundation
import Glibc
import Posix
import Testing
import Worker

/// A connected pair of Unix stream sockets: (the server's end, the client's end).
private func socketPair() throws -> (server: FileDescriptor, client: FileDescriptor) {
    var fds: [Int32] = [0, 0]
    let rc = socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds)
    guard rc == 0 else { throw PosixError(call: "socketpair", path: nil, errno: .current) }
    return (FileDescriptor(adopting: fds[0], path: "server end"), FileDescriptor(adopting: fds[1], path: "client end"))
}

private func admitted(_ a: ConnectionRegistry.Admission) -> (ClientConnection, ClientConnection?)? {
    if case let .admitted(c, shed) = a { return (c, shed) }
    return nil
}

@Suite struct ConnectionRegistryTests {
    @Test func aNewClientTakesThePlaceOfTheConnectionIdleLongest() throws {
        let registry = ConnectionRegistry()
        let pairs = try (0..<3).map { _ in try socketPair() }
        defer { withExtendedLifetime(pairs) {} }  // the client ends stay open to the end
        let a = try #require(admitted(registry.admit(pairs[0].server, uid: 1000, limit: 2, now: 10))).0
        let b = try #require(admitted(registry.admit(pairs[1].server, uid: 1000, limit: 2, now: 20))).0
        // a is the older by its connect, but it has sent something since: b is idle longest.
        a.touch(now: 30)
        let (c, shed) = try #require(admitted(registry.admit(pairs[2].server, uid: 1000, limit: 2, now: 40)))
        #expect(shed === b && b.eviction?.code == "shed" && a.eviction == nil && c.eviction == nil)
        #expect(b.eviction?.message.contains("limits.maxClients") == true)
        #expect(registry.liveCount == 2 && registry.count == 3, "b stays registered until its thread closes it")
        registry.remove(b)
        #expect(registry.count == 2)
    }

    @Test func connectionsInsideARequestAreNeverShedAndWhenAllAreTheNewcomerIsRefused() throws {
        let registry = ConnectionRegistry()
        let pairs = try (0..<4).map { _ in try socketPair() }
        defer { withExtendedLifetime(pairs) {} }
        let a = try #require(admitted(registry.admit(pairs[0].server, uid: nil, limit: 2, now: 1))).0
        let b = try #require(admitted(registry.admit(pairs[1].server, uid: nil, limit: 2, now: 2))).0
        a.beginRequest()  // the oldest, but busy (a long ask)
        let (c, shed) = try #require(admitted(registry.admit(pairs[2].server, uid: nil, limit: 2, now: 3)))
        #expect(shed === b && a.eviction == nil)
        c.beginRequest()
        guard case .refused = registry.admit(pairs[3].server, uid: nil, limit: 2, now: 4) else {
            Issue.record("every connection is inside a request: the newcomer must be refused")
            return
        }
        #expect(registry.liveCount == 2)
        a.endRequest(now: 5)
        #expect(admitted(registry.admit(pairs[3].server, uid: nil, limit: 2, now: 6))?.1 === a)
    }

    @Test func aReloadClosesTheConnectionsOfUIDsNoLongerAllowed() throws {
        let registry = ConnectionRegistry()
        let pairs = try (0..<3).map { _ in try socketPair() }
        defer { withExtendedLifetime(pairs) {} }  // the client ends stay open to the end
        let kept = try #require(admitted(registry.admit(pairs[0].server, uid: 1000, limit: 8, now: 1))).0
        let dropped = try #require(admitted(registry.admit(pairs[1].server, uid: 1001, limit: 8, now: 1))).0
        let unknown = try #require(admitted(registry.admit(pairs[2].server, uid: nil, limit: 8, now: 1))).0
        dropped.beginRequest()  // in the middle of a request: closed all the same
        #expect(registry.revoke(allowed: []).isEmpty, "an empty list allows everyone")
        let revoked = registry.revoke(allowed: [1000])
        #expect(revoked.map(\.id) == [dropped.id, unknown.id])
        #expect(dropped.eviction?.code == "forbidden" && unknown.eviction?.code == "forbidden" && kept.eviction == nil)
        #expect(dropped.eviction?.message.contains("uid 1001") == true)
        #expect(registry.revoke(allowed: [1000]).isEmpty, "each connection is closed once")
        #expect(dropped.gone() && !kept.gone(), "a request in progress stops at its next token")
    }

    @Test func anEvictionWakesTheConnectionsThreadAndLeavesItsReplySideOpen() throws {
        let registry = ConnectionRegistry()
        let pairs = try (0..<2).map { _ in try socketPair() }
        _ = registry.admit(pairs[0].server, uid: 1, limit: 1, now: 1)
        let (_, shed) = try #require(admitted(registry.admit(pairs[1].server, uid: 1, limit: 1, now: 2)))
        let victim = try #require(shed)
        // Its poll returns at once and its read sees end of file...
        let ready = try Poll.wait([(victim.fd.rawValue, Poll.readable)], timeoutMilliseconds: 0)
        #expect(ready[0] & Poll.readable != 0)
        var byte: UInt8 = 0
        #expect(try withUnsafeMutableBytes(of: &byte) { try victim.fd.read(into: $0) } == 0)
        // ...while it can still tell the client why.
        try UnixSocket.sendAll(victim.fd, Array("bye\n".utf8))
        var buffer = [UInt8](repeating: 0, count: 16)
        let n = try buffer.withUnsafeMutableBytes { try pairs[0].client.read(into: $0) }
        #expect(String(decoding: buffer[..<n], as: UTF8.self) == "bye\n")
    }

    @Test func aClientThatClosedIsGoneButOneThatOnlyFinishedWritingIsNot() throws {
        let registry = ConnectionRegistry()
        let closing = try socketPair(), halfClosing = try socketPair()
        defer { withExtendedLifetime(halfClosing) {} }
        let c1 = try #require(admitted(registry.admit(closing.server, uid: 1, limit: 4, now: 1))).0
        let c2 = try #require(admitted(registry.admit(halfClosing.server, uid: 1, limit: 4, now: 1))).0
        #expect(!c1.gone() && !c2.gone())
        try closing.client.close()
        // socat and `nc -N` shut down their writing side at the end of input and wait for the reply.
        try UnixSocket.shutdown(halfClosing.client, Int32(SHUT_WR))
        #expect(c1.gone())
        #expect(!c2.gone())
    }
}
