// The one error type of the NATS client: what failed, against which server or subject,
// and a hint where the usual cause is known (wrong credentials, JetStream not enabled,
// stream missing).

public enum NATSError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A server URL of the config or the command line that cannot be used.
    case badAddress(String, reason: String)
    /// TCP connect, send or receive failed (the server is down or unreachable).
    case unreachable(server: String, reason: String)
    /// The server closed the connection.
    case closed(server: String)
    /// Bytes from the server that are not the NATS protocol (or exceed a limit).
    case protocolViolation(server: String, reason: String)
    /// `-ERR` from the server (authorization violation, permissions, ...).
    case serverError(server: String, message: String)
    /// No reply within the deadline.
    case timedOut(server: String, waitingFor: String, seconds: Double)
    /// A JetStream API call answered with an error (`code`/`err_code` as the server gives them).
    case jetStream(subject: String, code: Int, errorCode: Int, description: String)
    /// No server answers on a subject (JetStream not enabled, or the account has no access).
    case noResponders(subject: String)
    /// The server requires TLS (INFO `tls_required`): this client has no TLS.
    case tlsRequired(server: String)
    /// Credentials that cannot be used as given (an nkey seed that does not parse, a seed
    /// file that cannot be read); never repeats the secret.
    case badCredentials(String)

    public var description: String {
        switch self {
        case let .badAddress(a, reason): return "NATS server address '\(a)': \(reason)"
        case let .unreachable(s, reason): return "NATS server \(s) unreachable: \(reason)"
        case let .closed(s): return "NATS server \(s) closed the connection"
        case let .protocolViolation(s, reason): return "NATS server \(s): protocol violation: \(reason)"
        case let .serverError(s, message):
            if isAuthorizationFailure {
                return "NATS server \(s): authorization failed (-ERR '\(message)'): check the user and password, the token or "
                    + "the nkey (jetstream.user/password, token or nkeySeedFile in the config; --user/--password, --token or "
                    + "--nkey-seed-file of recipe publish; nats://user:password@host in the URL) against the server's "
                    + "authorization block"
            }
            return "NATS server \(s): -ERR \(message)"
        case let .timedOut(s, what, seconds): return "NATS server \(s): no \(what) within \(seconds) s"
        case let .jetStream(subject, code, errorCode, d):
            let hint = errorCode == 10059 ? " (create the stream first, e.g. `recipe publish --create-stream`)" : ""
            return "JetStream \(subject): \(d) (code \(code), err_code \(errorCode))\(hint)"
        case let .tlsRequired(s):
            return "NATS server \(s) requires TLS, which this client does not support: give the server a listener without "
                + "TLS reached through an encrypted tunnel (WireGuard, SSH, stunnel at both ends; Operations.md, \"A fleet\")"
        case let .badCredentials(reason): return "NATS credentials: \(reason)"
        case let .noResponders(subject):
            return "\(subject): no responders (no stream captures this subject, or the server runs without JetStream, -js)"
        }
    }

    /// The server refused the credentials (`-ERR 'Authorization Violation'`): trying again
    /// with the same ones is only useful once the server's authorization changes.
    public var isAuthorizationFailure: Bool {
        if case .serverError(_, let m) = self { return m.lowercased().contains("authorization") }
        return false
    }

    /// Errors after which the connection cannot be used any more (reconnect).
    public var isConnectionLost: Bool {
        switch self {
        case .unreachable, .closed, .protocolViolation, .serverError: return true
        default: return false
        }
    }
}
