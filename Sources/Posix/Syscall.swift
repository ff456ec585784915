// The one funnel every system call of the project goes through (after swift-system's
// `valueOrErrno` / `system_*` shims): it retries EINTR, turns -1 into a `PosixError`
// naming the call and path, and consults the task's `FaultPlan` first so that tests can
// make the Nth write or fsync fail with ENOSPC or EIO without a full disk.
import Glibc

/// The calls a `FaultPlan` can make fail. One kind per C function family.
public enum SyscallKind: String, Sendable, CaseIterable {
    case open, close, read, write, fsync, fdatasync, ftruncate, fallocate
    case rename, unlink, mkdir, mkfifo, mmap, msync, flock, stat, poll, inotify, lseek
}

public enum Syscall {
    /// The fault plan of the current task (none in production). Set it with
    /// `FaultPlan.run(_:_:)`; it is inherited by child tasks, not by other threads.
    @TaskLocal public static var faults: FaultPlan?

    /// Runs `body` (a C call returning -1 and setting `errno` on failure) until it does not
    /// fail with EINTR. Injected faults are checked before each attempt; an injected EINTR
    /// is retried like a real one.
    @inline(__always)
    public static func run<T: FixedWidthInteger>(
        _ kind: SyscallKind, _ name: String, path: String? = nil, _ body: () -> T
    ) throws -> T {
        while true {
            if let plan = faults, let injected = plan.injection(for: kind) {
                if injected == .interrupted { continue }
                throw PosixError(call: name, path: path, errno: injected)
            }
            let result = body()
            if result == -1 {
                let e = Errno.current
                if e == .interrupted { continue }
                throw PosixError(call: name, path: path, errno: e)
            }
            return result
        }
    }

    /// The largest byte count a single `write`/`pwrite` may move under the current plan
    /// (tests use it to force short writes through the `writeAll` loops).
    @inline(__always)
    static func writeLimit(_ count: Int) -> Int {
        guard let limit = faults?.maximumWriteBytes else { return count }
        return max(1, min(count, limit))
    }
}

/// Scripted failures for tests: "the 3rd fsync fails with EIO", "every write after the
/// 10th fails with ENOSPC", "writes move at most 7 bytes". Thread-safe; counts calls of
/// each kind made while the plan is installed.
public final class FaultPlan: @unchecked Sendable {
    private struct Rule {
        let kind: SyscallKind
        let firstCall: Int
        let count: Int
        let errno: Errno
    }

    private var lock = pthread_mutex_t()
    private var rules: [Rule] = []
    private var counts: [SyscallKind: Int] = [:]
    private var _maximumWriteBytes: Int?
    private var _observer: (@Sendable (SyscallKind, Int) -> Void)?

    public init() { pthread_mutex_init(&lock, nil) }
    deinit { pthread_mutex_destroy(&lock) }

    /// Makes calls number `call`, `call+1`, ... `call+times-1` of `kind` (counted from 1
    /// since the plan was created) fail with `errno`. `times: .max` fails them all.
    @discardableResult
    public func fail(_ kind: SyscallKind, onCall call: Int = 1, times: Int = 1, with errno: Errno) -> FaultPlan {
        withLock { rules.append(Rule(kind: kind, firstCall: call, count: times, errno: errno)) }
        return self
    }

    /// Caps every `write`/`pwrite` at `bytes` bytes (short writes), or removes the cap.
    public var maximumWriteBytes: Int? {
        get { withLock { _maximumWriteBytes } }
        set { withLock { _maximumWriteBytes = newValue } }
    }

    /// Called before every call of the plan's task with its kind and number (from 1),
    /// before any injected failure. Tests use it to copy the files as a kill -9 at that
    /// moment would leave them. It must not make calls through `Syscall` itself.
    public var observer: (@Sendable (SyscallKind, Int) -> Void)? {
        get { withLock { _observer } }
        set { withLock { _observer = newValue } }
    }

    /// How many calls of `kind` were attempted under this plan (injected failures included).
    public func calls(_ kind: SyscallKind) -> Int { withLock { counts[kind, default: 0] } }

    /// Runs `body` with this plan installed for the current task.
    public func run<T>(_ body: () throws -> T) rethrows -> T {
        try Syscall.$faults.withValue(self) { try body() }
    }

    func injection(for kind: SyscallKind) -> Errno? {
        let (n, observer) = withLock { () -> (Int, (@Sendable (SyscallKind, Int) -> Void)?) in
            let n = counts[kind, default: 0] + 1
            counts[kind] = n
            return (n, _observer)
        }
        observer?(kind, n)
        return withLock {
            for r in rules where r.kind == kind && n >= r.firstCall && n - r.firstCall < r.count {
                return r.errno
            }
            return nil
        }
    }

    private func withLock<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return body()
    }
}
