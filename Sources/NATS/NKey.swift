// A NATS user's NKEY (https://docs.nats.io/running-a-nats-service/configuration/securing_nats/auth_intro/nkey_auth):
// the seed "SU…" that `nk -gen user` or `nsc` writes is base32 (RFC 4648, unpadded) of
//   [0x90 | type >> 5, (type & 31) << 3] + 32-byte Ed25519 seed + CRC-16/XMODEM (little-endian)
// with type 0xA0 (user); the public key "U…" is base32 of [0xA0] + the 32-byte public key
// + its CRC-16. The server names the public key in its `authorization { users: [{nkey: U…}] }`,
// sends a nonce in INFO, and the client's CONNECT carries `nkey` (the public key) and
// `sig`, the Ed25519 signature of the nonce in unpadded base64url. The seed is a secret:
// no error repeats it.
import Foundation

public struct NKey: Sendable {
    /// The user's public key, "U…" (56 characters).
    public let publicKey: String
    private let seed: [UInt8]

    static let seedPrefix: UInt8 = 18 << 3   // 'S'
    static let userPrefix: UInt8 = 20 << 3   // 'U'

    /// Parses a user seed ("SU…"; surrounding whitespace ignored).
    public init(seed text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let raw = Self.base32Decode(trimmed) else {
            throw NATSError.badCredentials("the nkey seed is not base32 (expected a user seed, \"SU…\", 58 characters)")
        }
        guard raw.count == 36 else {
            throw NATSError.badCredentials("the nkey seed decodes to \(raw.count) bytes, expected 36 (a user seed, \"SU…\")")
        }
        let stored = UInt16(raw[34]) | UInt16(raw[35]) << 8
        guard Self.crc16(raw[0..<34]) == stored else { throw NATSError.badCredentials("the nkey seed's checksum does not match (mistyped?)") }
        guard raw[0] & 0xF8 == Self.seedPrefix else { throw NATSError.badCredentials("the nkey is not a seed (it must start with S)") }
        let type = (raw[0] & 0x07) << 5 | (raw[1] & 0xF8) >> 3
        guard type == Self.userPrefix else {
            throw NATSError.badCredentials("the nkey seed is not a user's (\"SU…\"); operator and account keys do not log in")
        }
        seed = Array(raw[2..<34])
        let pk = [Self.userPrefix] + Ed25519.publicKey(seed: seed)
        let crc = Self.crc16(pk[...])
        publicKey = Self.base32Encode(pk + [UInt8(crc & 0xFF), UInt8(crc >> 8)])
    }

    /// The CONNECT `sig` for the server's INFO `nonce`: Ed25519 over the nonce's bytes,
    /// unpadded base64url.
    public func sign(nonce: String) -> String {
        Self.base64URL(Ed25519.sign(Array(nonce.utf8), seed: seed))
    }

    // MARK: encodings

    static let base32Alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    static func base32Encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var buffer: UInt32 = 0, bits = 0
        for b in bytes {
            buffer = buffer << 8 | UInt32(b)
            bits += 8
            while bits >= 5 {
                out.append(base32Alphabet[Int(buffer >> UInt32(bits - 5) & 31)])
                bits -= 5
            }
        }
        if bits > 0 { out.append(base32Alphabet[Int(buffer << UInt32(5 - bits) & 31)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Nil for a character outside the alphabet (or a length no encoding has).
    static func base32Decode(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        var buffer: UInt32 = 0, bits = 0
        for c in text.utf8 {
            guard let v = base32Alphabet.firstIndex(of: c) else { return nil }
            buffer = buffer << 5 | UInt32(v)
            bits += 5
            if bits >= 8 {
                out.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits - 8)))
                bits -= 8
            }
            buffer &= (1 << UInt32(bits)) - 1
        }
        return bits >= 5 ? nil : out
    }

    /// CRC-16/XMODEM (polynomial 0x1021, initial value 0), as the nkeys library computes it.
    static func crc16(_ bytes: ArraySlice<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for b in bytes {
            crc ^= UInt16(b) << 8
            for _ in 0..<8 { crc = crc & 0x8000 != 0 ? crc << 1 ^ 0x1021 : crc << 1 }
        }
        return crc
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            var v = UInt32(bytes[i]) << 16
            if n > 1 { v |= UInt32(bytes[i + 1]) << 8 }
            if n > 2 { v |= UInt32(bytes[i + 2]) }
            for k in 0..<(n + 1) { out.append(alphabet[Int(v >> UInt32(18 - 6 * k) & 63)]) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
