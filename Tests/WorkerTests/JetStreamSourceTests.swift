// The stream source against one real nats-server (no models): what a crash between a
// step's commit and its acknowledgement leaves behind comes again at once and in order
// (the consumer is placed after what the repository holds, not left to redeliver the
// unacknowledged messages after newer ones), and redeliveries of messages still in a step
// are not handed out twice.
import Foundation
import Glibc
import NATS
import Posix
import Storage
import TestSupport
import Testing
import Worker

@Suite(.serialized)
struct JetStreamSourceTests {
    func config(_ server: NATSCluster, ackWait: Double = 30) -> WorkerConfig.JetStream {
        var c = WorkerConfig.JetStream()
        c.servers = server.urls
        c.stream = "facts"
        c.subject = "facts.in"
        c.durable = "unit"
        c.user = NATSCluster.user
        c.password = NATSCluster.password
        c.batch = 4
        c.expiresMilliseconds = 300
        c.ackWaitSeconds = ackWait
        c.reconnectMaxSeconds = 0.2
        return c
    }

    func publish(_ lines: [String], _ server: NATSCluster, prefix: String) throws {
        let p = JetStreamPublisher(servers: try server.urls.map { try NATSServerAddress(parsing: $0) }, credentials: server.credentials,
                                   subject: "facts.in")
        for (i, l) in lines.enumerated() { try p.publish(Array(l.utf8), id: "\(prefix)-\(i)") }
        _ = try p.finish()
        p.close()
    }

    /// Takes batches until `count` facts and rejections arrived or `seconds` passed.
    func take(_ s: JetStreamSource, count: Int, seconds: Double) -> [SourceBatch] {
        var out: [SourceBatch] = []
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline && out.reduce(0, { $0 + $1.facts.count + $1.rejections.count }) < count {
            if let fd = s.descriptor { _ = try? Poll.wait([(fd, Poll.readable)], timeoutMilliseconds: 50) } else { usleep(50_000) }
            if let b = s.take() { out.append(b) }
        }
        return out
    }

    func sequences(_ batches: [SourceBatch]) -> [Int] {
        batches.flatMap { $0.facts.map(\.line) + $0.rejections.map(\.line) }.sorted()
    }

    @Test func aCrashBeforeTheAcknowledgementResumesInOrderAfterWhatIsDurable() throws {
        let root = try Fixtures.temporaryDirectory("js-source").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let server = try NATSCluster(root: root, size: 1)
        try server.start(0)
        try server.createStream("facts", subjects: ["facts.in"], replicas: 1)
        try publish((1...10).map { "Statement number \($0) of the unit test" }, server, prefix: "a")

        // First life: all ten arrive in stream order; only the first four are committed.
        let first = try JetStreamSource(config: config(server), parser: FactParser(sourceKind: .pipe), appliedThrough: 0, log: nil)
        let got = take(first, count: 10, seconds: 20)
        #expect(sequences(got) == Array(1...10))
        let source = got.flatMap(\.facts).first?.operation
        if case .add(_, _, _, _, _, let src)? = source {
            #expect(src.kind == .pipe && src.name == "jetstream:facts" && src.line == 1, "\(src)")
        } else { Issue.record("\(String(describing: source))") }
        let durable = SourceBatch(origin: .jetstream(stream: "facts"), facts: got.flatMap(\.facts).filter { $0.line <= 4 }, rejections: [],
                                  complete: { _, _ in SourceBatch.Completion() }, release: { false })
        first.complete(durable)
        first.close()  // the crash: 5...10 delivered, never acknowledged

        // Newer messages wait in the stream; a consumer left as it was would hand them out
        // first and redeliver 5...10 only after its ack wait (30 s).
        try publish(["Statement number 11 of the unit test", "{broken"], server, prefix: "b")
        let second = try JetStreamSource(config: config(server), parser: FactParser(sourceKind: .pipe), appliedThrough: 4, log: nil)
        let again = take(second, count: 8, seconds: 10)
        #expect(sequences(again) == Array(5...12), "in order, at once, each once")
        #expect(again.flatMap(\.rejections).map(\.line) == [12])
        for b in again { second.complete(b) }
        #expect(second.status.summary()?["terminated"] as? Int == 1)
        #expect(second.status.summary()?["applied_through"] as? Int == 12)
        second.close()

        // Everything acknowledged: a third life finds nothing to do, and the consumer stays.
        let third = try JetStreamSource(config: config(server), parser: FactParser(sourceKind: .pipe), appliedThrough: 12, log: nil)
        #expect(take(third, count: 1, seconds: 1.5).isEmpty)
        #expect(third.status.summary()?["pending"] as? Int == 0)
        third.close()
    }

    @Test func redeliveriesOfMessagesStillInAStepAreNotHandedOutTwice() throws {
        let root = try Fixtures.temporaryDirectory("js-redeliver").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let server = try NATSCluster(root: root, size: 1)
        try server.start(0)
        try server.createStream("facts", subjects: ["facts.in"], replicas: 1)
        try publish((1...3).map { "Slow statement \($0)" }, server, prefix: "s")

        let s = try JetStreamSource(config: config(server, ackWait: 1), parser: FactParser(sourceKind: .pipe), appliedThrough: 0, log: nil)
        let got = take(s, count: 3, seconds: 20)
        #expect(sequences(got) == [1, 2, 3])
        // A step longer than the ack wait: the server redelivers, the source holds them back.
        let during = take(s, count: 1, seconds: 3)
        #expect(during.isEmpty, "\(during)")
        #expect((s.status.summary()?["redeliveries_skipped"] as? Int ?? 0) >= 1)
        for b in got { s.complete(b) }
        _ = take(s, count: 1, seconds: 0.3)  // a redelivery already on its way when the ack left
        // Acknowledged now: nothing comes back.
        let skipped = s.status.summary()?["redeliveries_skipped"] as? Int ?? 0
        #expect(take(s, count: 1, seconds: 2.5).isEmpty)
        #expect(s.status.summary()?["redeliveries_skipped"] as? Int == skipped, "acknowledged, not redelivered")
        s.close()
    }
}
