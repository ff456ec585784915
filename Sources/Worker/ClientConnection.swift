// One accepted client of the query socket as the server tracks it: its descriptor, the
// peer's uid (SO_PEERCRED, read once at accept: a process cannot change the credentials of
// a connection it already made), when it last sent anything, whether a request of it is
// in progress, and why the server wants it closed. The connection's own thread owns the
// descriptor and does every read and write on it; other threads only mark it (`evict`) and
// wake that thread, so replies never interleave and the descriptor is never closed under
// the thread that uses it.
import Foundation
import Glibc
import Posix
import WorkerAPI

public final class ClientConnection: @unchecked Sendable {
    /// Unique for the worker's life (descriptor numbers are reused).
    public let id: Int
    public let fd: FileDescriptor
    /// The peer's uid at connect time; nil when SO_PEERCRED failed.
    public let uid: UInt32?
    private let lock = NSLock()
    private var _lastActivity: Double
    private var _busy = false
    private var _eviction: RequestError?

    init(id: Int, fd: FileDescriptor, uid: UInt32?, now: Double) {
        self.id = id
        self.fd = fd
        self.uid = uid
        _lastActivity = now
    }

    /// Monotonic seconds of the last bytes received or reply sent.
    public var lastActivity: Double { lock.withLock { _lastActivity } }
    /// Whether a request has been read and its reply not yet sent.
    public var busy: Bool { lock.withLock { _busy } }
    /// Set once the server decided to close it: the error its thread sends before closing.
    public var eviction: RequestError? { lock.withLock { _eviction } }

    public func touch(now: Double = monotonicSeconds()) { lock.withLock { _lastActivity = now } }
    public func beginRequest() { lock.withLock { _busy = true } }
    public func endRequest(now: Double = monotonicSeconds()) { lock.withLock { _busy = false; _lastActivity = now } }

    /// Marks the connection to be closed with `error` and wakes its thread; false when it
    /// was marked already. shutdown(SHUT_RD) makes the thread's `poll` return and its
    /// `read` see end of file (and the peer's further writes fail); the writing side stays
    /// open for the thread to send `error`. A request in progress stops generating at its
    /// next token (`gone`). Called by `ConnectionRegistry` under its lock, while the
    /// connection is registered and so its descriptor still open.
    @discardableResult
    func evict(_ error: RequestError) -> Bool {
        let first = lock.withLock { () -> Bool in
            guard _eviction == nil else { return false }
            _eviction = error
            return true
        }
        if first { try? UnixSocket.shutdown(fd, Int32(SHUT_RD)) }
        return first
    }

    /// Whether nobody will read a reply: the server evicted the connection, or the peer
    /// closed it (`UnixSocket.peerClosed`: one `poll` without waiting, ~1 µs, cheap enough
    /// between decode steps).
    public func gone() -> Bool {
        eviction != nil || UnixSocket.peerClosed(fd)
    }
}
