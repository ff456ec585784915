// The query socket: accepts clients on the listening Unix socket and serves each on its
// own thread. At most `limits.maxClients` connections are open: when a new client comes
// and all are taken, the one idle longest is told `shed` and closed to make room; only when
// every connection is inside a request is the newcomer told `busy` (`ConnectionRegistry`).
// A connection reads request lines with a bounded buffer: a line longer than
// `limits.maxRequestBytes` is answered with "too_large" at once and the rest of it is read
// and dropped without being kept, so a 100 MB line costs 64 KiB of memory. Replies are
// sent with MSG_NOSIGNAL and a send timeout, so a client that vanishes or stops reading
// costs an error on its own connection only; a client that hangs up while its question is
// answered stops the generation at the next token. Idle connections are closed after
// `limits.idleTimeoutSeconds`; when a reload removes a uid from `socket.allowedUIDs`, its
// open connections are told `forbidden` and closed.
import Foundation
import Glibc
import Posix
import WorkerAPI

public final class SocketServer: @unchecked Sendable {
    public let path: String
    public let listener: FileDescriptor
    let handler: RequestHandler
    let state: WorkerState
    /// The socket file's inode, to unlink at exit only the file we created.
    private let inode: ino_t
    let connections = ConnectionRegistry()
    /// A request line or reply at least this long is unusual (a batch of facts, a prompt's
    /// values): afterwards the heap's free pages go back to the system, so that one such
    /// request does not leave the worker's resident set grown for good.
    static let trimAfterBytes = 256 * 1024

    /// Listens on `path` with the config's mode (umask tightened during bind so the file
    /// never exists with looser permissions) and group.
    public init(config: WorkerConfig, handler: RequestHandler, state: WorkerState) throws {
        let path = config.socket.path
        self.path = path
        self.handler = handler
        self.state = state
        let mode = mode_t(UInt32(config.socket.mode, radix: 8) ?? 0o600)
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty { try FileSystem.makeDirectory(parent) }
        let old = umask(0o177)
        defer { umask(old) }
        listener = try UnixSocket.listen(path: path, mode: mode)
        if let group = config.socket.group {
            let gid: gid_t
            if let n = UInt32(group) { gid = n } else {
                guard let g = getgrnam(group) else { throw WorkerError.group(name: group) }
                gid = g.pointee.gr_gid
            }
            _ = try Syscall.run(.open, "chown", path: path) { Glibc.chown(path, uid_t.max, gid) }
        }
        var st = stat()
        _ = try Syscall.run(.stat, "stat", path: path) { Glibc.lstat(path, &st) }
        inode = st.st_ino
    }

    public var activeConnections: Int { connections.count }

    /// Accepts every pending client (call when the listener polls readable).
    public func acceptPending() {
        while true {
            let client: FileDescriptor?
            do { client = try UnixSocket.accept(listener) } catch {
                // EMFILE/ENFILE: the pending client stays queued; back off instead of spinning.
                state.log.warning("accept_failed", ["error": "\(error)"])
                usleep(100_000)
                return
            }
            guard let client else { return }
            let config = state.config
            let uid = try? UnixSocket.peerUID(client)
            if !config.socket.allowedUIDs.isEmpty {
                if uid == nil || !config.socket.allowedUIDs.contains(uid!) {
                    state.metrics.connectionRefused()
                    state.log.warning("peer_refused", ["uid": uid.map { Int($0) } ?? -1])
                    send(client, handler.errorReply(RequestError("forbidden", "this uid may not use the socket")))
                    try? client.close()
                    continue
                }
            }
            let connection: ClientConnection
            switch connections.admit(client, uid: uid, limit: config.limits.maxClients) {
            case .refused:
                state.metrics.connectionRefused()
                send(client, handler.errorReply(RequestError(
                    "busy", "all \(config.limits.maxClients) connections (limits.maxClients) are inside a request; retry later")))
                try? client.close()
                continue
            case let .admitted(c, shed):
                connection = c
                if let shed {
                    state.metrics.connectionShed()
                    state.log.info("connection_shed", ["uid": shed.uid.map { Int($0) } ?? -1,
                                                       "idle_seconds": monotonicSeconds() - shed.lastActivity])
                }
            }
            state.metrics.connectionOpened()
            let thread = Thread { [self] in
                serve(connection)
                // Unregistered before the close: no eviction can touch a reused descriptor number.
                connections.remove(connection)
                try? connection.fd.close()
                state.metrics.connectionClosed()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    /// After a reload: closes the open connections of uids no longer in
    /// `socket.allowedUIDs` (each is told `forbidden` first, by its own thread).
    public func applyAllowedUIDs(_ allowed: [UInt32]) {
        let revoked = connections.revoke(allowed: allowed)
        for c in revoked {
            state.metrics.connectionRevoked()
            state.log.warning("peer_revoked", ["uid": c.uid.map { Int($0) } ?? -1, "busy": c.busy])
        }
    }

    /// Closes the listener and removes the socket file if it is still the one we made.
    public func stopListening() {
        try? listener.close()
        var st = stat()
        if lstat(path, &st) == 0, st.st_ino == inode, (st.st_mode & S_IFMT) == S_IFSOCK { try? FileSystem.unlink(path) }
    }

    /// Waits until every connection has closed or `deadline` (monotonic seconds) passes.
    public func waitForConnections(until deadline: Double) -> Bool {
        while activeConnections > 0 {
            if monotonicSeconds() >= deadline { return false }
            usleep(10_000)
        }
        return true
    }

    /// Sends one reply line; false when the client is gone. `wait` false: a last word that
    /// is dropped rather than wait for a client that does not read (`UnixSocket.sendAll`).
    @discardableResult
    func send(_ fd: FileDescriptor, _ reply: Reply<ReplyBody>, wait: Bool = true) -> Bool {
        sendLine(fd, reply, wait: wait) != nil
    }

    /// `send`, returning the bytes sent (nil when the client is gone).
    func sendLine(_ fd: FileDescriptor, _ reply: Reply<ReplyBody>, wait: Bool = true) -> Int? {
        let bytes = (try? WireFormat.line(reply)) ?? Array(#"{"ok":false,"error":{"code":"internal","message":"reply encoding failed"}}"#.utf8) + [0x0A]
        do { try UnixSocket.sendAll(fd, bytes, wait: wait); return bytes.count } catch { return nil }
    }

    /// One client: read lines, answer each, until EOF, an error, idle timeout, eviction
    /// (shed, forbidden) or shutdown.
    func serve(_ connection: ClientConnection) {
        let fd = connection.fd
        var timeout = timeval(tv_sec: Int(state.config.limits.idleTimeoutSeconds.rounded(.up)), tv_usec: 0)
        _ = setsockopt(fd.rawValue, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var pending: [UInt8] = []
        var skipping = false
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        // The reason the server closes it, sent without waiting (the client may not read).
        func evicted() -> Bool {
            guard let e = connection.eviction else { return false }
            send(fd, handler.errorReply(e), wait: false)
            return true
        }
        while !state.stopping {
            if evicted() { return }
            let limits = state.config.limits
            let idleLeft = limits.idleTimeoutSeconds - (monotonicSeconds() - connection.lastActivity)
            if idleLeft <= 0 {
                send(fd, handler.errorReply(RequestError("idle_timeout", "no request for \(limits.idleTimeoutSeconds) s; closing")))
                return
            }
            let ready: [Int16]
            do { ready = try Poll.wait([(fd.rawValue, Poll.readable)], timeoutMilliseconds: Int32(min(250, idleLeft * 1000 + 1))) } catch { return }
            if ready[0] == 0 { continue }
            let n: Int
            do { n = try chunk.withUnsafeMutableBytes { try fd.read(into: $0) } } catch { return }
            if evicted() { return }  // woken by shutdown(SHUT_RD): n is 0
            if n == 0 { return }  // EOF (a final line without newline is dropped: it was never terminated)
            connection.touch()
            var start = 0
            while start < n {
                let newline = chunk[start..<n].firstIndex(of: 0x0A)
                let end = newline ?? n
                if skipping {
                    if newline != nil { skipping = false }
                } else {
                    pending.append(contentsOf: chunk[start..<end])
                    if pending.count > limits.maxRequestBytes {
                        pending = []
                        skipping = newline == nil
                        if !send(fd, handler.errorReply(RequestError("too_large", "request line longer than \(limits.maxRequestBytes) bytes; skipped"))) { return }
                    } else if newline != nil {
                        var line = pending[...]
                        if line.last == 0x0D { line = line.dropLast() }
                        pending = []
                        if !line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) {
                            let t0 = monotonicSeconds()
                            connection.beginRequest()
                            let reply = handler.handle(line, clientGone: { connection.gone() })
                            if evicted() { return }  // closed while it ran: the reason instead of the reply
                            // Idle again before the reply goes out, so that a client holding its
                            // reply always finds the server's view agreeing (not busy, this request
                            // its last activity), whichever thread the scheduler runs first.
                            connection.endRequest()
                            let sent = sendLine(fd, reply)
                            state.log.debug("request", ["op": reply.op?.rawValue ?? NSNull(), "ok": reply.ok,
                                                        "error": reply.error?.code ?? NSNull(),
                                                        "ms": (monotonicSeconds() - t0) * 1000, "sent": sent != nil])
                            if max(line.count, sent ?? 0) >= Self.trimAfterBytes { ProcessMemory.returnFreePages() }
                            if sent == nil { return }  // the client went away mid-reply
                        }
                    }
                }
                start = end + 1
            }
        }
    }
}
