// Ed25519 signatures (RFC 8032), signing only, for NKEY authentication: the server sends a
// nonce in INFO and the client returns its signature with the user's public key. A port of
// the signing half of TweetNaCl (https://tweetnacl.cr.yp.to, public domain: crypto_sign,
// its field arithmetic in 16 limbs of 16 bits, scalarmult and modL), kept as written there
// so that it can be read side by side with it; constant-time as TweetNaCl is (no branch
// or index depends on the secret). Slow by design and fast enough: one signature per
// connection takes milliseconds. Checked against RFC 8032's test vectors and Python's
// `cryptography` (Tests/NATSTests/NKeyTests.swift), and against nats-server itself.

public enum Ed25519 {
    /// An element of GF(2^255 - 19): 16 signed limbs of 16 bits, little-endian.
    typealias GF = [Int64]
    /// A point in extended coordinates (X, Y, Z, T).
    typealias Point = [GF]

    static let gf0: GF = [Int64](repeating: 0, count: 16)
    static let gf1: GF = [1] + [Int64](repeating: 0, count: 15)
    /// 2 * d, d = -121665/121666.
    static let d2: GF = [0xf159, 0x26b2, 0x9b94, 0xebd6, 0xb156, 0x8283, 0x149a, 0x00e0,
                         0xd130, 0xeef3, 0x80f2, 0x198e, 0xfce7, 0x56df, 0xd9dc, 0x2406]
    /// The base point's coordinates.
    static let baseX: GF = [0xd51a, 0x8f25, 0x2d60, 0xc956, 0xa7b2, 0x9525, 0xc760, 0x692c,
                            0xdc5c, 0xfdd6, 0xe231, 0xc0a4, 0x53fe, 0xcd6e, 0x36d3, 0x2169]
    static let baseY: GF = [0x6658] + [Int64](repeating: 0x6666, count: 15)
    /// The group order L = 2^252 + 27742317777372353535851937790883648493, in bytes.
    static let order: [Int64] = [0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
                                 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10]

    // MARK: signing

    /// The public key (32 bytes) of the 32-byte private `seed`.
    public static func publicKey(seed: [UInt8]) -> [UInt8] {
        precondition(seed.count == 32, "an Ed25519 seed has 32 bytes")
        let d = clampedHash(seed)
        return encode(scalarBase(Array(d[0..<32])))
    }

    /// The 64-byte signature (R, S) of `message` by the key of `seed` (crypto_sign).
    public static func sign(_ message: [UInt8], seed: [UInt8]) -> [UInt8] {
        precondition(seed.count == 32, "an Ed25519 seed has 32 bytes")
        let d = clampedHash(seed)
        let pk = encode(scalarBase(Array(d[0..<32])))
        let r = reduce(SHA512.hash(Array(d[32..<64]) + message))
        let R = encode(scalarBase(r))
        let h = reduce(SHA512.hash(R + pk + message))
        var x = [Int64](repeating: 0, count: 64)
        for i in 0..<32 { x[i] = Int64(r[i]) }
        for i in 0..<32 { for j in 0..<32 { x[i + j] &+= Int64(h[i]) &* Int64(d[j]) } }
        return R + modL(&x)
    }

    /// SHA-512 of the seed with the scalar half clamped (a multiple of 8, bit 254 set).
    private static func clampedHash(_ seed: [UInt8]) -> [UInt8] {
        var d = SHA512.hash(seed)
        d[0] &= 248
        d[31] &= 127
        d[31] |= 64
        return d
    }

    // MARK: field arithmetic (car25519, sel25519, pack25519, par25519, A, Z, M, inv25519)

    /// Carries each limb into the next; the top one wraps around times 38 (2^256 = 38 mod p).
    static func carry(_ o: inout GF) {
        for i in 0..<16 {
            o[i] &+= 1 << 16
            let c = o[i] >> 16
            o[i < 15 ? i + 1 : 0] &+= c &- 1 &+ (i == 15 ? 37 &* (c &- 1) : 0)
            o[i] &-= c << 16
        }
    }

    /// Swaps p and q when b is 1, leaves them when 0, without a branch.
    static func select(_ p: inout GF, _ q: inout GF, _ b: Int64) {
        let c = ~(b &- 1)
        for i in 0..<16 {
            let t = c & (p[i] ^ q[i])
            p[i] ^= t
            q[i] ^= t
        }
    }

    /// The canonical 32-byte little-endian encoding (fully reduced mod p).
    static func pack(_ n: GF) -> [UInt8] {
        var t = n
        carry(&t); carry(&t); carry(&t)
        var m = gf0
        for _ in 0..<2 {
            m[0] = t[0] &- 0xffed
            for i in 1..<15 {
                m[i] = t[i] &- 0xffff &- ((m[i - 1] >> 16) & 1)
                m[i - 1] &= 0xffff
            }
            m[15] = t[15] &- 0x7fff &- ((m[14] >> 16) & 1)
            let b = (m[15] >> 16) & 1
            m[14] &= 0xffff
            select(&t, &m, 1 &- b)
        }
        var o = [UInt8](repeating: 0, count: 32)
        for i in 0..<16 {
            o[2 * i] = UInt8(truncatingIfNeeded: t[i])
            o[2 * i + 1] = UInt8(truncatingIfNeeded: t[i] >> 8)
        }
        return o
    }

    static func parity(_ a: GF) -> UInt8 { pack(a)[0] & 1 }

    static func add(_ a: GF, _ b: GF) -> GF { (0..<16).map { a[$0] &+ b[$0] } }
    static func sub(_ a: GF, _ b: GF) -> GF { (0..<16).map { a[$0] &- b[$0] } }

    static func mul(_ a: GF, _ b: GF) -> GF {
        var t = [Int64](repeating: 0, count: 31)
        for i in 0..<16 { for j in 0..<16 { t[i + j] &+= a[i] &* b[j] } }
        for i in 0..<15 { t[i] &+= 38 &* t[i + 16] }
        var o = Array(t[0..<16])
        carry(&o); carry(&o)
        return o
    }

    /// a^(p-2) = 1/a.
    static func invert(_ a: GF) -> GF {
        var c = a
        for i in stride(from: 253, through: 0, by: -1) {
            c = mul(c, c)
            if i != 2 && i != 4 { c = mul(c, a) }
        }
        return c
    }

    // MARK: points (add, cswap, pack, scalarmult, scalarbase)

    /// p + q on the twisted Edwards curve.
    static func add(_ p: Point, _ q: Point) -> Point {
        let a = mul(sub(p[1], p[0]), sub(q[1], q[0]))
        let b = mul(add(p[0], p[1]), add(q[0], q[1]))
        let c = mul(mul(p[3], q[3]), d2)
        var d = mul(p[2], q[2])
        d = add(d, d)
        let e = sub(b, a), f = sub(d, c), g = add(d, c), h = add(b, a)
        return [mul(e, f), mul(h, g), mul(g, f), mul(e, h)]
    }

    static func swap(_ p: inout Point, _ q: inout Point, _ b: Int64) {
        for i in 0..<4 { select(&p[i], &q[i], b) }
    }

    /// The 32-byte encoding: y, with the parity of x in the top bit.
    static func encode(_ p: Point) -> [UInt8] {
        let zi = invert(p[2])
        var r = pack(mul(p[1], zi))
        r[31] ^= parity(mul(p[0], zi)) << 7
        return r
    }

    /// s * q (s: 32 bytes, little-endian), a ladder with the same steps for every s.
    static func scalarMult(_ q: Point, _ s: [UInt8]) -> Point {
        var p: Point = [gf0, gf1, gf1, gf0]
        var q = q
        for i in stride(from: 255, through: 0, by: -1) {
            let b = Int64((s[i / 8] >> UInt8(i & 7)) & 1)
            swap(&p, &q, b)
            q = add(q, p)
            p = add(p, p)
            swap(&p, &q, b)
        }
        return p
    }

    static func scalarBase(_ s: [UInt8]) -> Point {
        scalarMult([baseX, baseY, gf1, mul(baseX, baseY)], s)
    }

    // MARK: scalars mod L (modL, reduce)

    /// x (64 limbs, each a byte plus carries) mod L, as 32 bytes.
    static func modL(_ x: inout [Int64]) -> [UInt8] {
        for i in stride(from: 63, through: 32, by: -1) {
            var c: Int64 = 0
            var j = i - 32
            while j < i - 12 {
                x[j] &+= c &- 16 &* x[i] &* order[j - (i - 32)]
                c = (x[j] &+ 128) >> 8
                x[j] &-= c << 8
                j += 1
            }
            x[j] &+= c
            x[i] = 0
        }
        var c: Int64 = 0
        for j in 0..<32 {
            x[j] &+= c &- (x[31] >> 4) &* order[j]
            c = x[j] >> 8
            x[j] &= 255
        }
        for j in 0..<32 { x[j] &-= c &* order[j] }
        var r = [UInt8](repeating: 0, count: 32)
        for i in 0..<32 {
            x[i + 1] &+= x[i] >> 8
            r[i] = UInt8(truncatingIfNeeded: x[i])
        }
        return r
    }

    /// A 64-byte hash as a scalar mod L.
    static func reduce(_ h: [UInt8]) -> [UInt8] {
        var x = h.map { Int64($0) }
        return modL(&x)
    }
}
