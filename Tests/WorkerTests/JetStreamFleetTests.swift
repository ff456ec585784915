// A fleet as operators run it, on loopback: a three-node NATS JetStream cluster, a stream
// with three replicas, two workers each with its own durable consumer, facts sent with
// `recipe publish`. A NATS node is killed and restarted, and a worker is killed with
// SIGKILL and restarted, while the stream is being consumed. At the end both workers hold
// every fact exactly once, in the same order (equal content fingerprints), bad messages
// were rejected with their stream sequence, both answer a question alike, and a worker
// started before the cluster answered its socket meanwhile and logged its retried
// connection.
import Foundation
import Glibc
import NATS
import Posix
import TestSupport
import Testing
import Worker

@Suite(.serialized, .enabled(if: WorkerProcess.available, "needs the recipe binary and the models (Pipelines/fetch-models.sh)"))
struct JetStreamFleetTests {
    static func statements(_ range: Range<Int>) -> [String] {
        range.map { "The fleet test city number \($0) lies in region \($0 % 7) of country \($0 * 31 % 97)" }
    }

    func worker(_ tag: String, durable: String, cluster: NATSCluster) throws -> WorkerProcess {
        try WorkerProcess(tag: tag, extra: [
            "pipes": [] as [String],
            "jetstream": ["servers": cluster.urls, "stream": "facts", "subject": "facts.in", "durable": durable,
                          "user": NATSCluster.user, "password": NATSCluster.password, "batch": 64,
                          "expiresMilliseconds": 500, "reconnectMaxSeconds": 0.5] as [String: Any],
            "promptStates": ["capacity": 0] as [String: Any],
        ])
    }

    /// `recipe publish` with `lines` on stdin; its exit status and stderr. `midway` runs
    /// after the first half of the lines is written (and read by the publisher).
    func publish(_ lines: [String], cluster: NATSCluster, servers: [String]? = nil, prefix: String,
                 midway: (() -> Void)? = nil) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: WorkerProcess.binary!)
        p.arguments = ["publish", "--servers", (servers ?? cluster.urls).joined(separator: ","), "--subject", "facts.in",
                       "--user", NATSCluster.user, "--password", NATSCluster.password, "--id-prefix", prefix]
        let input = Pipe(), errors = Pipe()
        p.standardInput = input
        p.standardError = errors
        p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        let half = midway == nil ? lines.count : lines.count / 2
        try input.fileHandleForWriting.write(contentsOf: Data((lines[..<half].joined(separator: "\n") + "\n").utf8))
        if let midway {
            midway()
            try input.fileHandleForWriting.write(contentsOf: Data((lines[half...].joined(separator: "\n") + "\n").utf8))
        }
        try input.fileHandleForWriting.close()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }

    func stats(_ w: WorkerProcess) throws -> (repository: [String: Any], jetstream: [String: Any]) {
        let s = try w.request(["op": "stats"])
        return (s["repository"] as? [String: Any] ?? [:], s["jetstream"] as? [String: Any] ?? [:])
    }

    /// Until the worker holds `live` facts and has nothing of the stream left to do.
    func waitUntilCaughtUp(_ w: WorkerProcess, live: Int, timeout: Double = 180) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var last: (repository: [String: Any], jetstream: [String: Any]) = ([:], [:])
        while Date() < deadline {
            last = try stats(w)
            if last.repository["live_facts"] as? Int == live, last.jetstream["pending"] as? Int == 0,
               last.jetstream["in_flight"] as? Int == 0, last.jetstream["connected"] as? Bool == true { return }
            usleep(200_000)
        }
        throw WorkerFailure("not caught up: \(last); log: \(w.logTail())")
    }

    @Test func twoWorkersConvergeThroughANodeAndAWorkerCrash() throws {
        let root = try Fixtures.temporaryDirectory("fleet").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let cluster = try NATSCluster(root: root)
        let w1 = try worker("fleet-w1", durable: "w1", cluster: cluster)
        let w2 = try worker("fleet-w2", durable: "w2", cluster: cluster)
        defer { _ = try? w1.stop(); _ = try? w2.stop(); w1.remove(); w2.remove() }

        // Started before the cluster: the worker answers its socket and keeps retrying.
        try w1.start()
        #expect(try w1.request(["op": "health"]).ok)
        var unavailable: [[String: Any]] = []
        for _ in 0..<100 where unavailable.count < 2 { unavailable = w1.logEvents("jetstream_unavailable"); usleep(100_000) }
        #expect(unavailable.count >= 2, "a retried, logged connection: \(w1.logTail())")
        #expect((unavailable.first?["error"] as? String)?.contains("unreachable") == true, "\(unavailable.first ?? [:])")
        #expect(try stats(w1).jetstream["connected"] as? Bool == false)

        try cluster.startAll()
        try cluster.createStream("facts", subjects: ["facts.in"], replicas: 3)
        try w2.start()

        let a = Self.statements(0..<40), b = Self.statements(40..<440), c = Self.statements(440..<480)
        let bad = ["{\"prompt\": \"no target here\"}", "{not json"]
        let (s1, e1) = try publish(a + bad, cluster: cluster, prefix: "a")
        #expect(s1 == 0 && e1.contains("42 messages stored"), "\(e1)")
        try waitUntilCaughtUp(w1, live: 40)

        // While a long feed is being published: a node dies (the first of every client's
        // list, so all of them move to another server)...
        let feed = FeedResult()
        let feedDone = DispatchSemaphore(value: 0)
        Thread { [self] in
            do {
                (feed.status, feed.text) = try publish(b, cluster: cluster, prefix: "b", midway: { usleep(500_000); cluster.kill(0) })
            } catch { feed.text = "\(error)" }
            feedDone.signal()
        }.start()
        // ...and a worker dies with SIGKILL in the middle of consuming it.
        // (Bounded by count, not time: a loaded machine consumes slower.)
        var seen = 0
        for _ in 0..<6000 where seen < 60 { seen = (try? w1.liveFacts()) ?? seen; usleep(20_000) }
        #expect(seen > 40 && seen < 440, "killed mid-stream at \(seen) facts")
        if let p = w1.process { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        #expect(try w2.request(["op": "health"]).ok, "the socket answers while the stream fails over")
        #expect(feedDone.wait(timeout: .now() + 120) == .success, "the feed finished")
        try cluster.start(0)
        #expect(feed.status == 0 && feed.text.contains("reconnections") && !feed.text.contains(" 0 reconnections"),
                "the publisher moved to another node: \(feed.text)")
        try w1.start()

        // The same lines again under the same ids are dropped by the stream; a retraction
        // and a repeated statement go through the workers.
        let (s3, e3) = try publish(Array(b.prefix(5)), cluster: cluster, prefix: "b")
        #expect(s3 == 0 && e3.contains("5 duplicates"), "\(e3)")
        let retract = "{\"op\": \"retract\", \"statement\": \"\(a[0])\"}"
        let (s4, e4) = try publish(c + [retract, a[1]], cluster: cluster, prefix: "c")
        #expect(s4 == 0 && e4.contains("42 messages stored"), "\(e4)")

        try waitUntilCaughtUp(w1, live: 479)
        try waitUntilCaughtUp(w2, live: 479)
        let r1 = try stats(w1), r2 = try stats(w2)
        // Exactly once: 480 adds and one retraction in each log, nothing applied twice.
        #expect(r1.repository["log_records"] as? Int == 481, "\(r1)")
        #expect(r2.repository["log_records"] as? Int == 481, "\(r2)")
        // The restarted worker went on after what its repository held.
        let resumed = w1.logEvents("jetstream_connected").last?["after_sequence"] as? Int ?? 0
        #expect(resumed >= seen, "held \(seen) facts when killed: \(w1.logEvents("jetstream_connected"))")
        let f1 = r1.repository["content_fingerprint"] as? String, f2 = r2.repository["content_fingerprint"] as? String
        #expect(f1 != nil && f1 == f2, "\(f1 ?? "nil") vs \(f2 ?? "nil")")
        #expect(r2.jetstream["terminated"] as? Int == 2, "\(r2.jetstream)")
        // The same in Prometheus text: the lag as a gauge, the terminated messages counted.
        let metrics = try w2.request(["op": "metrics"])["metrics"] as? String ?? ""
        #expect(metrics.contains("\nrecipe_jetstream_pending ") && metrics.contains("\nrecipe_jetstream_terminated_total 2\n")
                && metrics.contains("\nrecipe_jetstream_connected 1\n"), "\(metrics)")
        // The rejected messages are kept with their stream sequences (41 and 42).
        let kept = (try? String(contentsOfFile: w2.repository + "/rejected/jetstream-facts.rejections", encoding: .utf8)) ?? ""
        #expect(kept.contains("jetstream:facts:41:") && kept.contains("jetstream:facts:42:"), "\(kept)")
        let answer = try w1.request(["op": "retrieve", "question": "Where does the fleet test city number 100 lie?"])
        #expect(((answer["fact"] as? [String: Any])?["statement"] as? String)?.hasPrefix("The fleet test city") == true, "\(answer)")
        // Both replicas answer the same question the same way, from the same fact.
        let ask: [String: Any] = ["op": "ask", "question": "The fleet test city number 100 lies in", "max_tokens": 6]
        let a1 = try w1.request(ask), a2 = try w2.request(ask)
        let statement = { (r: [String: Any]) in (r["fact"] as? [String: Any])?["statement"] as? String }
        #expect(a1.ok && a2.ok && a1["answer"] as? String == a2["answer"] as? String && statement(a1) == statement(a2)
                && statement(a1) != nil, "\(a1) vs \(a2)")
    }
}


final class FeedResult: @unchecked Sendable {
    var status: Int32 = -1
    var text = ""
}
