// Threads that exist before `main` (OpenBLAS starts its pool in a library constructor)
// do not have the worker's signals blocked, so the kernel may deliver SIGTERM to one of
// them, whose default action would kill the process before the graceful shutdown runs.
// This handler, installed for the worker's signals, re-sends the signal to the main
// thread (`pthread_kill`, async-signal-safe), where it is blocked and therefore waits in
// the signalfd like every other delivery.
import Glibc

nonisolated(unsafe) private var forwardingTarget = pthread_t()

public enum SignalForwarding {
    /// Call from the main thread after blocking `signals` there.
    public static func install(_ signals: [Int32]) {
        forwardingTarget = pthread_self()
        for s in signals {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { sig in _ = pthread_kill(forwardingTarget, sig) }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(s, &action, nil)
        }
    }
}
