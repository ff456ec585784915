// The errors of a socket client (`WorkerClient`), each naming the socket and what failed.
// An error reply of the worker is not one of them: it is a `RequestError`.
import Foundation

public enum WorkerAPIError: Error, CustomStringConvertible {
    /// The worker at `path` did not do `waitingFor` within `seconds`.
    case timedOut(path: String, seconds: Double, waitingFor: String)
    /// The worker's reply line is not a reply of the protocol (`reason` says why).
    case badReply(path: String, reason: String)

    public var description: String {
        switch self {
        case let .timedOut(path, s, what):
            return "socket \(path): no answer within \(String(format: "%g", s)) s (waiting for \(what))"
        case let .badReply(path, reason):
            return "socket \(path): the reply is not one of the protocol: \(reason)"
        }
    }
}
