// A server of a NATS cluster as users write it: "nats://host:port", "host:port", "host"
// (port 4222), optionally with "user:password@" or "token@" in front of the host, as the
// NATS tools accept. TLS ("tls://") is not supported by this client: a refusal, not a
// silent plain-text connection.
import Foundation

public struct NATSServerAddress: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int
    /// Credentials given in the URL itself (they win over the separate ones).
    public var user: String?
    public var password: String?
    public var token: String?

    public init(host: String, port: Int = 4222) {
        self.host = host
        self.port = port
    }

    /// Parses one server URL.
    public init(parsing text: String) throws {
        var s = Substring(text.trimmingSpaces())
        if let scheme = s.range(of: "://") {
            let name = s[s.startIndex..<scheme.lowerBound].lowercased()
            guard name == "nats" else { throw NATSError.badAddress(text, reason: "scheme '\(name)' is not supported (use nats://)") }
            s = s[scheme.upperBound...]
        }
        if s.hasSuffix("/") { s = s.dropLast() }
        var user: String?, password: String?, token: String?
        if let at = s.lastIndex(of: "@") {
            let auth = s[s.startIndex..<at]
            s = s[s.index(after: at)...]
            if let colon = auth.firstIndex(of: ":") {
                user = String(auth[auth.startIndex..<colon]).removingPercentEscapes()
                password = String(auth[auth.index(after: colon)...]).removingPercentEscapes()
            } else {
                token = String(auth).removingPercentEscapes()
            }
        }
        var host = String(s), port = 4222
        if host.hasPrefix("[") {  // [::1]:4222
            guard let close = host.firstIndex(of: "]") else { throw NATSError.badAddress(text, reason: "unclosed '['") }
            let after = host[host.index(after: close)...]
            host = String(host[host.index(after: host.startIndex)..<close])
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()), (1...65535).contains(p) else { throw NATSError.badAddress(text, reason: "bad port") }
                port = p
            } else if !after.isEmpty { throw NATSError.badAddress(text, reason: "unexpected '\(after)'") }
        } else if let colon = host.lastIndex(of: ":") {
            guard let p = Int(host[host.index(after: colon)...]), (1...65535).contains(p) else {
                throw NATSError.badAddress(text, reason: "port must be 1...65535")
            }
            port = p
            host = String(host[host.startIndex..<colon])
        }
        guard !host.isEmpty, !host.contains(where: { $0 == "/" || $0 == " " }) else {
            throw NATSError.badAddress(text, reason: "no host")
        }
        self.init(host: host, port: port)
        self.user = user
        self.password = password
        self.token = token
    }

    /// Without credentials: safe for logs.
    public var description: String { host.contains(":") ? "nats://[\(host)]:\(port)" : "nats://\(host):\(port)" }
}

/// How the client authenticates: the CONNECT fields `user`/`pass`, `auth_token`, or
/// `nkey`/`sig` (the user's NKEY, signing the server's nonce).
public struct NATSCredentials: Sendable, Equatable {
    public var user: String?
    public var password: String?
    public var token: String?
    /// A user's seed ("SU…"), parsed by `NKey` when the connection signs the nonce.
    public var nkeySeed: String?

    public init(user: String? = nil, password: String? = nil, token: String? = nil, nkeySeed: String? = nil) {
        self.user = user
        self.password = password
        self.token = token
        self.nkeySeed = nkeySeed
    }

    /// The credentials of a seed file (`nk -gen user > user.nk`, or a file `nsc` wrote):
    /// its first line that is a seed ("S…").
    public static func nkeySeedFile(_ path: String) throws -> NATSCredentials {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NATSError.badCredentials("cannot read the nkey seed file \(path)")
        }
        let lines = String(decoding: data.prefix(64 * 1024), as: UTF8.self).split(whereSeparator: \.isNewline)
        guard let seed = lines.map({ $0.trimmingCharacters(in: .whitespaces) }).first(where: { $0.hasPrefix("S") }) else {
            throw NATSError.badCredentials("the nkey seed file \(path) holds no seed (a line starting with SU)")
        }
        _ = try NKey(seed: seed)  // refused now, with its reason, rather than at the server
        return NATSCredentials(nkeySeed: seed)
    }

    /// The URL's own credentials, else these.
    func applying(_ a: NATSServerAddress) -> NATSCredentials {
        if a.user != nil || a.token != nil { return NATSCredentials(user: a.user, password: a.password, token: a.token) }
        return self
    }
}

extension String {
    /// "%40" -> "@" (URL userinfo); malformed escapes are kept as written.
    func removingPercentEscapes() -> String {
        var out: [UInt8] = []
        let b = Array(utf8)
        var i = 0
        while i < b.count {
            if b[i] == 0x25, i + 2 < b.count, let v = UInt8(String(decoding: b[i + 1...i + 2], as: UTF8.self), radix: 16) {
                out.append(v)
                i += 3
            } else {
                out.append(b[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
