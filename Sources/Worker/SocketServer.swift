// The query socket: accepts clients on the listening Unix socket and serves each on its
// own thread (at most `limits.maxClients`; more are told "busy" and closed). A connection
// reads request lines with a bounded buffer: a line longer than `limits.maxRequestBytes`
// is answered with "too_large" at once and the rest of it is read and dropped without
// being kept, so a 100 MB line costs 64 KiB of memory. Replies are sent with
// MSG_NOSIGNAL and a send timeout, so a client that vanishes or stops reading costs an
// error on its own connection only. Idle connections are closed after
// `limits.idleTimeoutSeconds`.
import Foundation
import Glibc
import Posix

public final class SocketServer: @unchecked Sendable {
    public let path: String
    public let listener: FileDescriptor
    let handler: RequestHandler
    let state: WorkerState
    /// The socket file's inode, to unlink at exit only the file we created.
    private let inode: ino_t
    private let lock = NSLock()
    private var active = 0

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

    public var activeConnections: Int { lock.withLock { active } }

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
            if !config.socket.allowedUIDs.isEmpty {
                let uid = peerUID(client)
                if uid == nil || !config.socket.allowedUIDs.contains(uid!) {
                    state.metrics.connectionRefused()
                    state.log.warning("peer_refused", ["uid": uid.map { Int($0) } ?? -1])
                    send(client, handler.errorReply(RequestError("forbidden", "this uid may not use the socket")))
                    try? client.close()
                    continue
                }
            }
            let admitted: Bool = lock.withLock {
                guard active < config.limits.maxClients else { return false }
                active += 1
                return true
            }
            guard admitted else {
                state.metrics.connectionRefused()
                send(client, handler.errorReply(RequestError("busy", "too many clients (limit \(config.limits.maxClients)); retry later")))
                try? client.close()
                continue
            }
            state.metrics.connectionOpened()
            let thread = Thread { [self] in
                serve(client)
                try? client.close()
                state.metrics.connectionClosed()
                lock.withLock { active -= 1 }
            }
            thread.stackSize = 8 << 20
            thread.start()
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

    func peerUID(_ fd: FileDescriptor) -> UInt32? {
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; } (needs _GNU_SOURCE in C, so spelled out);
        // SO_PEERCRED is 17 on Linux.
        var cred: (pid: Int32, uid: UInt32, gid: UInt32) = (0, 0, 0)
        var len = socklen_t(12)
        guard (try? Syscall.run(.open, "getsockopt", path: fd.path, { getsockopt(fd.rawValue, SOL_SOCKET, 17, &cred, &len) })) != nil
        else { return nil }
        return cred.uid
    }

    @discardableResult
    func send(_ fd: FileDescriptor, _ reply: [String: Any]) -> Bool {
        var bytes = (try? JSONSerialization.data(withJSONObject: JSONValue.sanitize(reply), options: [.sortedKeys, .withoutEscapingSlashes]))
            .map { Array($0) } ?? Array(#"{"ok":false,"error":{"code":"internal","message":"reply encoding failed"}}"#.utf8)
        bytes.append(0x0A)
        do { try UnixSocket.sendAll(fd, bytes); return true } catch { return false }
    }

    /// One client: read lines, answer each, until EOF, an error, idle timeout or shutdown.
    func serve(_ fd: FileDescriptor) {
        var timeout = timeval(tv_sec: Int(state.config.limits.idleTimeoutSeconds.rounded(.up)), tv_usec: 0)
        _ = setsockopt(fd.rawValue, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var pending: [UInt8] = []
        var skipping = false
        var lastActivity = monotonicSeconds()
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while !state.stopping {
            let limits = state.config.limits
            let idleLeft = limits.idleTimeoutSeconds - (monotonicSeconds() - lastActivity)
            if idleLeft <= 0 {
                send(fd, handler.errorReply(RequestError("idle_timeout", "no request for \(limits.idleTimeoutSeconds) s; closing")))
                return
            }
            let ready: [Int16]
            do { ready = try Poll.wait([(fd.rawValue, Poll.readable)], timeoutMilliseconds: Int32(min(250, idleLeft * 1000 + 1))) } catch { return }
            if ready[0] == 0 { continue }
            let n: Int
            do { n = try chunk.withUnsafeMutableBytes { try fd.read(into: $0) } } catch { return }
            if n == 0 { return }  // EOF (a final line without newline is dropped: it was never terminated)
            lastActivity = monotonicSeconds()
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
                            let reply = handler.handle(line)
                            let sent = send(fd, reply)
                            state.log.debug("request", ["op": reply["op"] ?? NSNull(), "ok": reply["ok"] ?? false,
                                                        "error": (reply["error"] as? [String: Any])?["code"] ?? NSNull(),
                                                        "ms": (monotonicSeconds() - t0) * 1000, "sent": sent])
                            if !sent { return }  // the client went away mid-reply
                            lastActivity = monotonicSeconds()
                        }
                    }
                }
                start = end + 1
            }
        }
    }
}
