// Validation of the `jetstream` settings at load: every server URL parses, names are
// single NATS subject tokens (a space or a dot in a stream or consumer name would change
// the API subject it is sent on), counts are in range.
import NATS

extension WorkerConfig.JetStream {
    public var enabled: Bool { !servers.isEmpty }

    /// The parsed server list (validated at load, so this does not fail after it).
    public func addresses() throws -> [NATSServerAddress] { try servers.map { try NATSServerAddress(parsing: $0) } }

    public var credentials: NATSCredentials { NATSCredentials(user: user, password: password, token: token) }

    /// What a connection sends: the seed of `nkeySeedFile` (read now, so a replaced file
    /// counts at the next attempt), else user and password or the token.
    public func connectionCredentials() throws -> NATSCredentials {
        try nkeySeedFile.map { try NATSCredentials.nkeySeedFile($0) } ?? credentials
    }

    /// The first problem, as (key, reason); nil when the settings are usable.
    var problem: (key: String, reason: String)? {
        guard enabled else { return nil }
        for s in servers {
            do { _ = try NATSServerAddress(parsing: s) } catch { return ("servers", "\(error)") }
        }
        func isName(_ s: String) -> Bool {
            !s.isEmpty && s.utf8.count <= 255 && !s.utf8.contains { $0 <= 0x20 || $0 == 0x7F || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: ">") }
        }
        if !isName(stream) { return ("stream", "must be a stream name (no spaces, dots or wildcards)") }
        if !isName(durable) { return ("durable", "must be a consumer name (no spaces, dots or wildcards)") }
        if let s = subject, s.isEmpty || s.utf8.contains(where: { $0 <= 0x20 }) { return ("subject", "must be a NATS subject") }
        if password != nil && user == nil { return ("password", "needs jetstream.user") }
        if token != nil && user != nil { return ("token", "is an alternative to user and password, not both") }
        if let f = nkeySeedFile {
            if f.isEmpty { return ("nkeySeedFile", "must be the path of a file holding a user seed") }
            if user != nil || token != nil { return ("nkeySeedFile", "is an alternative to user and password or a token, not both") }
        }
        if !(1...10_000).contains(batch) { return ("batch", "must be between 1 and 10000") }
        if !(100...600_000).contains(expiresMilliseconds) { return ("expiresMilliseconds", "must be between 100 and 600000") }
        if !(ackWaitSeconds >= 1 && ackWaitSeconds <= 86_400) { return ("ackWaitSeconds", "must be between 1 and 86400") }
        if !(reconnectMaxSeconds >= 0.1 && reconnectMaxSeconds <= 600) { return ("reconnectMaxSeconds", "must be between 0.1 and 600") }
        return nil
    }
}
