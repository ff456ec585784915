// OpenBLAS keeps a thread count of its own; every sgemm of this module first hands it
// `Threads.count` when that changed, so `--threads` (or `Threads.set` anywhere) reaches
// OpenBLAS without the base module knowing about it.
import COpenBLAS
import Foundation
import Parallelism

public enum BLASThreads {
    private static let lock = NSLock()
    /// The count last given to OpenBLAS (0: none yet, OpenBLAS's own default).
    nonisolated(unsafe) private static var applied = 0

    /// Gives OpenBLAS `Threads.count` (`openblas_set_num_threads`) if it differs from the
    /// last count given. Called before each `cblas_sgemm` (a lock and a compare: nothing
    /// next to a matrix product). The count is read under the lock, so the last call
    /// applies the latest count.
    public static func sync() {
        lock.lock(); defer { lock.unlock() }
        let n = Threads.count
        if n != applied {
            openblas_set_num_threads(Int32(n))
            applied = n
        }
    }

    /// The thread count OpenBLAS uses now (`openblas_get_num_threads`).
    public static var openBLASCount: Int { Int(openblas_get_num_threads()) }
}
