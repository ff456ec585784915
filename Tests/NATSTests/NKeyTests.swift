// NKEY authentication's pieces against independent implementations: SHA-512 against
// Python's hashlib, Ed25519 against RFC 8032's test vectors 1-3 and Python's `cryptography`
// (four more seeds and messages of 1 to 200 bytes), the seed and public-key encodings
// against a user key encoded with Python's base64 and binascii.crc_hqx (CRC-16/XMODEM).
// The vectors were generated once with Python 3 and `cryptography` 48 and are kept here.
// Bad seeds are refused with a reason that never repeats the seed.
import NATS
import Posix
import Testing

struct NKeyTests {
    static func bytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = hex.startIndex
        while i < hex.endIndex {
            let j = hex.index(i, offsetBy: 2)
            out.append(UInt8(hex[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    static func hex(_ b: [UInt8]) -> String {
        b.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    @Test(arguments: [
        ([UInt8](), "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"),
        (Array("abc".utf8), "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"),
        // bytes 0...255 four times, then "xxxxxxx": 1,031 bytes, past a block boundary
        (Array((0..<4).flatMap { _ in (0...255).map { UInt8($0) } }) + Array("xxxxxxx".utf8),
         "87376c3b0534ecaf02fdc88eb42d4542a3c3d21d834368b8831593c828ea3a6ff6c8162651bcdb900a88ca188a7f6e7f3b69bfdda980ab2e933d64ba0e34c5b4"),
    ])
    func sha512MatchesHashlib(_ message: [UInt8], _ digest: String) {
        #expect(Self.hex(SHA512.hash(message)) == digest)
    }

    /// (seed, message, public key, signature), hex.
    static let vectors: [(String, String, String, String)] = [
        // RFC 8032, section 7.1, tests 1-3
        ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", "",
         "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
         "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
        ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb", "72",
         "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
         "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
        ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7", "af82",
         "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
         "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
        // Python `cryptography`, random.Random(20261207)
        ("f427c91aeeb32524a5544f4c1506149b97ce51f9a4fd258989e0a23a02aa3367", "6f",
         "3f8e778ba6f5aee7156f4ec4b8221f8295fdafe1f180c28f7234f4ea9067947c",
         "0245745c6410e34808fdd692d4993c650f68e11f09a6fea021ec16efcd7284cb8bea9ef327893c6ca10b33fb27e7c73f10711cc763f7bdcea7b7f84cf675ac05"),
        ("2035343d60dd98a49ccd79a5fb7c436620fcd1a3ccb8f9479f4aa640a70da8d5", "a218eecb9ef31b922b1907",
         "62c9b9c8ed6b6afa1de9f951e9a5a163585f48f5c85004e09b8e5aa8f1df40b4",
         "afcffa3058e2709f6fd42f254711b027284d6fbf58430d167a6523c9cf0f65e435bb52995bbe1c10f5721e929355489cde9a9e4e932b4c190c1fdf4f2f0c000a"),
        ("385c1faa83b403ddbd60acd8d0f1a364a81029dc15ddc2d9d183b3aac87faaa5",
         "a62e00527d5261dcd49f2616edda0e9441958ddd3e90a0e7af54cfc8c61527cbf3d44fa913bbf86549cb20209dd4611f7a0b779cb22cdb53dd8f8d26bd08a4a6",
         "03386aae668d350d230281255b8b968b51c4d4eef2e1028497a01d6f470f0fd6",
         "473045f2819ed79bf2e1b9a1481a30941bda1e1d3c92af36bd2ef09fa4c633f392b8ea5a4cebbe50d5bb3199f2be5fb46b9be6251add78b3150e9aa06280ce02"),
        ("2d25b3890db6a66420982bf936f08e4784e955ab91b95a069f47bce75ee56bc9",
         "bbcb26a7627397b30ebad009ea542c09a11e3faf4a8bc486e9417866bd7eb3baee66b7e828b363a20dfb783d059d15db9b34962307dd69815c3e5852e62d18d5e986e2550bc3af5bf844d9405157b04353134f62e8c2de0fd00d1326e751a51913a571b81ad46811c26393a5688a56b2f1e5ee9be1f4bc77fd4cac7f1b1b1cc85ab0ed4f125c5e29b2d4a5234cfb0d6fa4527894187a3e64c6098b741103d303f68833381e513e53730498748a85d16ec545a6dc8a5df0c0b340f03c6db23641e408cb7b6ce0f354",
         "904c13965e66d87952ba126607a25f0e1f31a5b1db17751f5468b4ed63ab0653",
         "f0cae3546fe0014a0767396d4073ec3c951b64e5ee12edff50aa1ca941aaf4045e0849867f8575724a02036f041b99dc837ce8023db58887c9b1c5e499b1f206"),
    ]

    @Test func ed25519MatchesRFC8032AndCryptography() {
        for (seed, message, publicKey, signature) in Self.vectors {
            #expect(Self.hex(Ed25519.publicKey(seed: Self.bytes(seed))) == publicKey, "seed \(seed.prefix(8))…")
            #expect(Self.hex(Ed25519.sign(Self.bytes(message), seed: Self.bytes(seed))) == signature, "seed \(seed.prefix(8))…")
        }
    }

    /// A user key encoded by Python (base64.b32encode, binascii.crc_hqx), its nonce signed
    /// by `cryptography` and encoded with base64.urlsafe_b64encode without padding.
    static let userSeed = "SUALQ2KYDNVAUYYU5AMTUCQK7AVKLYFEZFQVBDV5IP6RMLIXN2NADEIDIY"
    static let userPublicKey = "UCYISJHXISR2SX3VRU6DEAWCIANPOTTKXOSWBT5I66VOB3PFRABTTRVP"

    @Test func aUserSeedGivesItsPublicKeyAndSignsTheNonce() throws {
        let key = try NKey(seed: "  " + Self.userSeed + "\n")
        #expect(key.publicKey == Self.userPublicKey)
        #expect(key.sign(nonce: "kEvjQ4Ky7c-1_Kw") == "yhEEzZgWKdVNErLcpq3y6c6dif5eMEn8gcph2GKioRoZ5PK0gLRCbi42A7uAUktuKYIK3HHi1a35WaEdg566Bw")
    }

    @Test(arguments: [
        ("SAALQ2KYDNVAUYYU5AMTUCQK7AVKLYFEZFQVBDV5IP6RMLIXN2NADEPQRI", "not a user's"),    // an account seed
        ("SUALQ2KYDNVAUYYU5AMTUCQK7AVKLYFEZFQVBDV5IP6RMLIXN2NADEIDIA", "checksum"),        // last character changed
        ("SUALQ2KYDNVAUYYU5AMTUCQK7AVKLYFEZFQVBDV5IP6RMLIXN2NADEID", "bytes"),             // cut short
        ("UCYISJHXISR2SX3VRU6DEAWCIANPOTTKXOSWBT5I66VOB3PFRABTTRVP", "bytes"),            // a public key, not a seed
        ("sualq2kydnvauyyu5amtucqk7avklyfezfqvbdv5ip6rmlixn2nadeidiy", "base32"),         // lower case
        ("SUALQ2KYDNVAUYYU5AMTUCQK7AVKLYFEZFQVBDV5IP6RMLIXN2NADEIDI1", "base32"),
        ("", "bytes"),
    ])
    func badSeedsAreRefusedWithoutRepeatingThem(_ seed: String, _ reason: String) {
        do {
            _ = try NKey(seed: seed)
            Issue.record("accepted \(seed)")
        } catch {
            let text = "\(error)"
            #expect(text.contains(reason), "\(text)")
            #expect(seed.count < 8 || !text.contains(seed.prefix(20)), "the error repeats the seed: \(text)")
        }
    }

    @Test func hostileSeedsNeverCrash() {
        var rng = SplitMix64(seed: 7)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567=\n é".unicodeScalars)
        for n in 0..<400 {
            let s = String(String.UnicodeScalarView((0..<(n % 90)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }))
            _ = try? NKey(seed: "SU" + s)
        }
    }

}
