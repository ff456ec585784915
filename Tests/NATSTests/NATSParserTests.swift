// The NATS protocol parser on well-formed frames cut at every byte, and on hostile bytes:
// each violation is refused with a reason, nothing is allocated from an unchecked size.
// Also the acknowledgement subjects of JetStream and the server URLs users write.
import NATS
import Testing

struct NATSParserTests {
    static let stream: [UInt8] = Array((
        "INFO {\"server_id\":\"x\",\"max_payload\":1048576}\r\n" +
        "PING\r\n+OK\r\nPONG\r\n" +
        "MSG facts.in 1 5\r\nhello\r\n" +
        "MSG facts.in 1 $JS.ACK.facts.w1.1.7.3.1700000000000000000.12 11\r\nParis is it\r\n" +
        "HMSG _INBOX.a.pull 1 28 28\r\nNATS/1.0 404 No Messages\r\n\r\n\r\n" +
        "HMSG x 2 r 22 25\r\nNATS/1.0\r\nA-B: c d\r\n\r\nxyz\r\n" +
        "MSG empty 3 0\r\n\r\n" +
        "-ERR 'Authorization Violation'\r\n").utf8)

    static func frames(_ bytes: [UInt8], cut: Int) throws -> [NATSFrame] {
        var p = NATSParser(server: "test")
        var out: [NATSFrame] = []
        p.append(bytes[0..<cut])
        while let f = try p.next() { out.append(f) }
        p.append(bytes[cut...])
        while let f = try p.next() { out.append(f) }
        #expect(p.buffered == 0)
        return out
    }

    @Test func framesAreTheSameWhereverTheBytesAreCut() throws {
        let whole = try Self.frames(Self.stream, cut: Self.stream.count)
        #expect(whole.count == 10)
        for cut in 0...Self.stream.count {
            #expect(try Self.frames(Self.stream, cut: cut) == whole, "cut at \(cut)")
        }
        guard case .message(let m) = whole[5] else { Issue.record("\(whole[5])"); return }
        #expect(m.subject == "facts.in" && m.reply?.hasPrefix("$JS.ACK.") == true && m.payload == Array("Paris is it".utf8))
        guard case .message(let status) = whole[6] else { Issue.record("\(whole[6])"); return }
        #expect(status.headers?.status == 404 && status.headers?.statusDescription == "No Messages" && status.payload.isEmpty)
        guard case .message(let h) = whole[7] else { Issue.record("\(whole[7])"); return }
        #expect(h.headers?.value("a-b") == "c d" && h.payload == Array("xyz".utf8) && h.reply == "r")
        #expect(whole[9] == .error("Authorization Violation"))
    }

    @Test(arguments: [
        ("MSG a 1 5\r\nhelloXY", "not followed by CRLF"),
        ("MSG a 1 -5\r\n", "not a byte count"),
        ("MSG a 1 99999999999999999999\r\n", "not a byte count"),
        ("MSG a 1 9000000\r\n", "exceeds the limit"),
        ("HMSG a 1 10 5\r\n", "exceeds total"),
        ("HMSG a 1 5 5\r\nhello\r\n", "not NATS/1.0 headers"),
        ("MSG a\r\n", "arguments"),
        ("BOGUS x\r\n", "unknown operation"),
        ("MSG a 1 0x10\r\n", "not a byte count"),
    ])
    func hostileFramesAreRefused(_ input: String, _ reason: String) {
        var p = NATSParser(server: "s", maximumPayload: 8 << 20)
        p.append(Array(input.utf8))
        do {
            _ = try p.next()
            Issue.record("accepted \(input.debugDescription)")
        } catch {
            #expect("\(error)".contains(reason), "\(error)")
        }
    }

    @Test func aControlLineWithoutEndIsRefusedAtTheLimit() throws {
        var p = NATSParser(server: "s", maximumControlLine: 64)
        p.append([UInt8](repeating: 0x41, count: 64))
        #expect(try p.next() == nil)  // may still end
        p.append([0x41])
        #expect(throws: NATSError.self) { try p.next() }
    }

    @Test func aLargePayloadWaitsForAllItsBytes() throws {
        var p = NATSParser(server: "s")
        let body = [UInt8](repeating: 0x61, count: 100_000)
        p.append(Array("MSG s 1 100000\r\n".utf8) + body[0..<50_000])
        #expect(try p.next() == nil)
        p.append(body[50_000...] + [0x0D, 0x0A])
        guard case .message(let m)? = try p.next() else { Issue.record("no message"); return }
        #expect(m.payload == body)
    }

    @Test func acknowledgementSubjectsGiveThePosition() {
        let v1 = JetStreamDelivery(ackSubject: "$JS.ACK.facts.w1.2.417.33.1700000000000000000.9", payload: [])
        #expect(v1?.stream == "facts" && v1?.consumer == "w1" && v1?.deliveryCount == 2)
        #expect(v1?.streamSequence == 417 && v1?.consumerSequence == 33 && v1?.pending == 9)
        let v2 = JetStreamDelivery(ackSubject: "$JS.ACK.hub.ACCHASH.facts.w2.1.5.5.1700000000000000000.0.tok", payload: [])
        #expect(v2?.stream == "facts" && v2?.consumer == "w2" && v2?.streamSequence == 5 && v2?.pending == 0)
        for bad in ["$JS.ACK.facts.w1.1.x.3.1.0", "$JS.ACK.facts.w1.1.0.3.1.0", "$JS.NAK.facts.w1.1.2.3.1.0",
                    "$JS.ACK.facts.w1.1.2.3", "$JS.ACK.facts.w1.1.-2.3.1.0", "facts.in"] {
            #expect(JetStreamDelivery(ackSubject: bad, payload: []) == nil, "\(bad)")
        }
        let status = NATSMessage(subject: "_INBOX.a.pull", sid: "1", reply: nil,
                                 headers: NATSHeaders(status: 408, statusDescription: "Request Timeout"), payload: [])
        #expect(JetStreamDelivery.classify(status) == .ended(status: 408, description: "Request Timeout"))
    }

    @Test func serverAddressesAsUsersWriteThem() throws {
        let a = try NATSServerAddress(parsing: "nats://alice:s%40cret@10.0.0.5:4223")
        #expect(a.host == "10.0.0.5" && a.port == 4223 && a.user == "alice" && a.password == "s@cret" && a.token == nil)
        #expect(a.description == "nats://10.0.0.5:4223", "no credentials in logs")
        let b = try NATSServerAddress(parsing: "tok@localhost")
        #expect(b.host == "localhost" && b.port == 4222 && b.token == "tok")
        let c = try NATSServerAddress(parsing: "[::1]:5000")
        #expect(c.host == "::1" && c.port == 5000)
        for bad in ["tls://x:4222", "x:0", "x:70000", "nats://", "x:abc", "a b:1"] {
            #expect(throws: NATSError.self, "\(bad)") { try NATSServerAddress(parsing: bad) }
        }
    }

    @Test func headersRoundTrip() {
        let h = NATSHeaders(fields: [.init(name: "Nats-Msg-Id", value: "feed-12")])
        #expect(h.encoded() == Array("NATS/1.0\r\nNats-Msg-Id: feed-12\r\n\r\n".utf8))
        #expect(NATSHeaders.parse(h.encoded()[...]) == h)
    }
}
