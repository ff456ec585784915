// The open connections of the query socket and the decisions about them: whether a new
// client gets in (`limits.maxClients`), which connection makes room for it, and which
// connections a reload of `socket.allowedUIDs` closes. Connections are only marked here
// (`ClientConnection.evict`); each one's own thread sends the reason and closes it.
//
// Admission when full: the connection idle longest (no request in progress) is shed with
// `shed`, so idle clients, however many, can never lock out a new one; only when every
// open connection is inside a request is the newcomer refused with `busy`.
import Foundation
import Posix
import WorkerAPI

public final class ConnectionRegistry: @unchecked Sendable {
    public enum Admission {
        /// Registered; `shed` is the idle connection evicted to make room, if any.
        case admitted(ClientConnection, shed: ClientConnection?)
        /// Every open connection is inside a request.
        case refused
    }

    private let lock = NSLock()
    private var open: [Int: ClientConnection] = [:]
    private var nextID = 0

    public init() {}

    /// Connections whose threads are still running (evicted ones included until they close).
    public var count: Int { lock.withLock { open.count } }

    /// Connections not marked for closing: the ones `limits.maxClients` counts.
    public var liveCount: Int { lock.withLock { open.values.filter { $0.eviction == nil }.count } }

    /// Registers a newly accepted client if fewer than `limit` connections are live, else
    /// evicts the idle connection whose last activity is oldest and registers it in its
    /// place, else refuses it (the caller tells it `busy` and closes it).
    public func admit(_ fd: FileDescriptor, uid: UInt32?, limit: Int, now: Double = monotonicSeconds()) -> Admission {
        lock.withLock {
            let live = open.values.filter { $0.eviction == nil }
            var shed: ClientConnection?
            if live.count >= limit {
                guard let victim = live.filter({ !$0.busy }).min(by: { ($0.lastActivity, $0.id) < ($1.lastActivity, $1.id) }) else {
                    return .refused
                }
                let idle = Int((now - victim.lastActivity).rounded())
                victim.evict(RequestError("shed", "closed to make room for a new client: \(limit) connections were open "
                                          + "(limits.maxClients) and this one was idle longest (\(idle) s)"))
                shed = victim
            }
            nextID += 1
            let c = ClientConnection(id: nextID, fd: fd, uid: uid, now: now)
            open[c.id] = c
            return .admitted(c, shed: shed)
        }
    }

    /// Evicts with `forbidden` every live connection whose uid is not in `allowed` (empty:
    /// everyone is allowed); returns them. Called when a reload changed the list.
    @discardableResult
    public func revoke(allowed: [UInt32]) -> [ClientConnection] {
        guard !allowed.isEmpty else { return [] }
        return lock.withLock {
            open.values.sorted { $0.id < $1.id }.filter { c in
                guard c.eviction == nil, c.uid.map({ !allowed.contains($0) }) ?? true else { return false }
                let who = c.uid.map { "uid \($0)" } ?? "a peer of unknown uid"
                return c.evict(RequestError("forbidden", "\(who) is no longer in socket.allowedUIDs (config reloaded); closing"))
            }
        }
    }

    /// Forgets `c`; its thread then closes the descriptor (after this, nothing else touches it).
    public func remove(_ c: ClientConnection) { _ = lock.withLock { open.removeValue(forKey: c.id) } }
}
