// The facts readers look up by row: append-only, shared by every snapshot, so that a
// time step does not copy the catalog for its new snapshot.
import Glibc

/// Facts by the sequence of their add record; append-only, shared by all snapshots.
final class FactCatalog: @unchecked Sendable {
    private var facts: [UInt64: Fact] = [:]
    private var lock = pthread_rwlock_t()

    init() { pthread_rwlock_init(&lock, nil) }
    deinit { pthread_rwlock_destroy(&lock) }

    func add(_ items: [(UInt64, Fact)]) {
        pthread_rwlock_wrlock(&lock)
        for (s, f) in items { facts[s] = f }
        pthread_rwlock_unlock(&lock)
    }

    subscript(sequence: UInt64) -> Fact? {
        pthread_rwlock_rdlock(&lock)
        defer { pthread_rwlock_unlock(&lock) }
        return facts[sequence]
    }
}
