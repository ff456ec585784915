// Signals as a descriptor (signalfd(2)), so that SIGTERM/SIGINT/SIGHUP arrive through the
// same poll loop as everything else instead of interrupting arbitrary code. The signals
// must be blocked in every thread: call `SignalDescriptor(blocking:)` at the very start of
// the process, before any thread (Dispatch, OpenBLAS) exists, since threads inherit the
// mask of their creator.
import Glibc

public final class SignalDescriptor: @unchecked Sendable {
    public let descriptor: FileDescriptor
    public let signals: [Int32]

    /// Blocks `signals` for the calling thread (`pthread_sigmask(SIG_BLOCK)`) and opens a
    /// non-blocking `signalfd` for them. Also ignores SIGPIPE (broken pipes and sockets then
    /// fail with EPIPE instead of killing the process).
    public init(blocking signals: [Int32] = [SIGTERM, SIGINT, SIGHUP]) throws {
        var mask = sigset_t()
        sigemptyset(&mask)
        for s in signals { sigaddset(&mask, s) }
        let rc = pthread_sigmask(SIG_BLOCK, &mask, nil)
        guard rc == 0 else { throw PosixError(call: "pthread_sigmask", path: nil, errno: Errno(rawValue: rc)) }
        Glibc.signal(SIGPIPE, SIG_IGN)
        let fd = try Syscall.run(.open, "signalfd") {
            c_signalfd(-1, &mask, O_NONBLOCK | O_CLOEXEC)  // SFD_NONBLOCK, SFD_CLOEXEC
        }
        descriptor = FileDescriptor(adopting: fd, path: "signalfd")
        self.signals = signals
    }

    /// The signals delivered since the last call (empty when none is pending).
    public func pending() throws -> [Int32] {
        var out: [Int32] = []
        // struct signalfd_siginfo is 128 bytes; ssi_signo is its first u32.
        var info = [UInt8](repeating: 0, count: 128)
        while true {
            let n: Int
            do {
                n = try info.withUnsafeMutableBytes { try descriptor.read(into: $0) }
            } catch let e as PosixError where e.errno == .wouldBlock {
                return out
            }
            guard n == 128 else { return out }
            out.append(info.withUnsafeBytes { Int32(bitPattern: $0.load(as: UInt32.self)) })
        }
    }
}

// <sys/signalfd.h> is not part of the Glibc module map.
@_silgen_name("signalfd") private func c_signalfd(_ fd: Int32, _ mask: UnsafePointer<sigset_t>, _ flags: Int32) -> Int32
