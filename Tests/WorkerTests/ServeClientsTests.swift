// The socket under bad clients and under load, against the real `recipe serve`: garbage
// bytes, a 100 MB line, a client that never sends, one that leaves mid-reply, too many
// clients, SIGHUP; a question past the token limit, an asker that leaves, idle clients
// filling every slot, a reload that takes a uid off the list; then 32 concurrent askers
// while facts stream in through the pipe, and 32 asks at once that get the answers they get
// one at a time (continuous batching).
import Foundation
import Glibc
import Posix
import TestSupport
import Testing
import Worker
import WorkerAPI

@Suite(.serialized, .enabled(if: WorkerProcess.available, "needs the recipe binary and the models (Pipelines/fetch-models.sh)"))
struct ServeClientsTests {
    @Test func badClientsAreHandledAndOthersKeepBeingServed() throws {
        let w = try WorkerProcess(tag: "bad", extra: ["limits": ["idleTimeoutSeconds": 2, "maxClients": 6, "maxRequestBytes": 65536,
                                                                 "defaultGenerationTokens": 2, "maxGenerationTokens": 8] as [String: Any]])
        defer { w.remove() }
        try w.start()
        let pid = w.process!.processIdentifier

        // Garbage bytes, invalid UTF-8, wrong types: an error each, the connection stays.
        let c = try w.connect()
        try c.send(raw: [0x00, 0xFF, 0xFE, 0x80, 0x7B, 0x0A])
        #expect(try c.readReply().errorCode == "bad_json")
        try c.send(raw: Array("[1,2,3]\n{\"op\":42}\n{\"op\":\"ask\",\"question\":\"x\",\"max_tokens\":100000}\n{\"op\":\"fly\"}\n".utf8))
        #expect(try c.readReply().errorCode == "bad_json")
        #expect(try c.readReply().errorCode == "invalid_field")
        #expect(try c.readReply().errorCode == "invalid_field")
        #expect(try c.readReply().errorCode == "unknown_op")
        // JSON booleans are not numbers, nor numbers booleans.
        try c.send(raw: Array(#"{"op":"ask","question":"x","max_tokens":true}"#.utf8 + [0x0A] + #"{"op":"retrieve","question":"x","include_prompt":1}"#.utf8 + [0x0A]))
        for field in ["max_tokens", "include_prompt"] {
            let r = try c.readReply()
            #expect(r.errorCode == "invalid_field" && (r["error"] as? [String: Any])?["field"] as? String == field, "\(r)")
        }
        #expect(try c.request(["op": "add", "fact": ["target": "only a target"]]).errorCode == "invalid_fact")
        #expect(try c.request(["op": "add"]).errorCode == "missing_field")
        #expect(try c.request(["op": "health", "id": 5])["id"] as? Int == 5)

        // A 100 MB line: answered with too_large once it passes the limit, skipped without
        // being buffered (the worker's resident memory does not grow by 100 MB).
        let rssBefore = residentKiB(pid)
        let big = try w.connect()
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1 << 20)
        let sender = Thread {
            for _ in 0..<100 { if (try? big.send(raw: chunk)) == nil { return } }
            _ = try? big.send(raw: Array("\n{\"op\":\"health\"}\n".utf8))
        }
        sender.start()
        #expect(try big.readReply().errorCode == "too_large")
        #expect(try big.readReply().ok, "the connection survives the long line")
        let rssAfter = residentKiB(pid)
        #expect(rssAfter - rssBefore < 50 * 1024, "RSS grew from \(rssBefore) KiB to \(rssAfter) KiB")
        print("100 MB line: worker RSS \(rssBefore) KiB -> \(rssAfter) KiB")

        // A client that connects and never sends is closed after the idle timeout,
        // while another client is served meanwhile.
        let idle = try w.connect()
        #expect(try w.request(["op": "health"]).ok)
        #expect(try idle.readReply().errorCode == "idle_timeout")
        #expect((try? idle.readLine()) == nil, "closed after the idle timeout")

        // A client that sends a request and disconnects before the reply.
        for _ in 0..<3 {
            let gone = try w.connect()
            try gone.send(raw: Array("{\"op\":\"retrieve\",\"question\":\"anything\",\"k\":64,\"include_prompt\":true}\n{\"op\":\"ask\",\"question\":\"Hello\"}\n".utf8))
            gone.close()
        }
        #expect(try w.request(["op": "health"]).ok)

        // Too many clients, all idle: the one idle longest is told shed and closed to make
        // room for the extra one; the others still work.
        var quiet = false
        for _ in 0..<1200 where !quiet {
            let open = ((try w.request(["op": "stats"]))["worker"] as? [String: Any])?["connections_open"] as? Int ?? 0
            quiet = open <= 1
            if !quiet { usleep(50_000) }
        }
        #expect(quiet, "earlier connections are still open")
        // Fill every slot with a client the worker has answered (so it is registered). A
        // connection the worker has not reaped yet (the stats requests above) is idle longer
        // than any of them, so it is the one shed if it is still there.
        var held: [WorkerClient] = []
        for _ in 0..<6 {
            let c = try w.connect()
            #expect(try c.request(["op": "health"]).ok)
            held.append(c)
        }
        var settled = false
        for _ in 0..<200 where !settled {
            settled = ((try held[5].request(["op": "stats"]))["worker"] as? [String: Any])?["connections_open"] as? Int == 6
            if !settled { usleep(50_000) }
        }
        #expect(settled, "the six held connections are the only ones open")
        let extra = try w.connect()
        #expect(try extra.request(["op": "health"]).ok, "the extra client is served")
        #expect(try held[0].readReply().errorCode == "shed")
        #expect(try held[1].request(["op": "health"]).ok)
        held.forEach { $0.close() }
        extra.close()
        usleep(300_000)

        // SIGHUP reloads limits; the worker keeps serving.
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: w.configPath))) as! [String: Any]
        var limits = config["limits"] as! [String: Any]
        limits["maxGenerationTokens"] = 3
        limits["defaultGenerationTokens"] = 1
        config["limits"] = limits
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: w.configPath))
        kill(pid, SIGHUP)
        var reloaded = false
        for _ in 0..<100 where !reloaded { usleep(50_000); reloaded = !w.logEvents("reloaded").isEmpty }
        #expect(reloaded)
        #expect(try w.request(["op": "ask", "question": "Hello", "max_tokens": 5]).errorCode == "invalid_field")

        // SIGHUP with a new checkpoint setting: graceful stop, re-exec in place (same pid).
        config["checkpoint"] = "untrained"
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: w.configPath))
        kill(pid, SIGHUP)
        var restarted = false
        for _ in 0..<600 where !restarted {
            usleep(50_000)
            restarted = w.logEvents("listening").count >= 2 && ((try? w.request(["op": "health"]))?.ok ?? false)
        }
        #expect(restarted, "\(w.logTail())")
        #expect(w.process?.processIdentifier == pid && w.process?.isRunning == true)
        #expect(try w.stop() == 0)
    }

    /// A question longer than `limits.maxQuestionTokens` never reaches the LLM; an ask whose
    /// client hangs up stops generating (the worker polls the socket between tokens).
    @Test func aLongQuestionIsRefusedAndAnAskWhoseClientLeftStops() throws {
        // One answer at a time: the next ask gets the slot only if the abandoned one frees it.
        let w = try WorkerProcess(tag: "hangup", extra: ["limits": ["maxGenerationTokens": 256, "maxBatch": 1] as [String: Any]])
        defer { w.remove() }
        try w.start()
        let long = String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 60)
        let refused = try w.request(["op": "ask", "question": long, "max_tokens": 1])
        let error = refused["error"] as? [String: Any] ?? [:]
        #expect(refused.errorCode == "too_large" && error["field"] as? String == "question", "\(refused)")
        #expect((error["tokens"] as? Int ?? 0) > 512 && error["limit"] as? Int == 512, "\(refused)")

        // Sends a 256-token ask and hangs up at once.
        let gone = try w.connect()
        try gone.send(raw: Array(#"{"op":"ask","question":"Count from one to a thousand: one, two, three,","max_tokens":256}"#.utf8 + [0x0A]))
        gone.close()
        var worker: [String: Any] = [:]
        for _ in 0..<2400 {
            worker = (try w.request(["op": "stats"]))["worker"] as? [String: Any] ?? [:]
            if (worker["asks_abandoned"] as? Int ?? 0) + (worker["asks"] as? Int ?? 0) >= 1 { break }
            usleep(50_000)
        }
        #expect(worker["asks_abandoned"] as? Int == 1 && worker["asks"] as? Int == 0, "\(worker)")
        #expect((worker["tokens_generated"] as? Int ?? 256) < 256, "\(worker)")
        #expect(!w.logEvents("ask_abandoned").isEmpty, "\(w.logTail())")
        #expect(try w.request(["op": "ask", "question": "Hello", "max_tokens": 2]).ok)
        let batch = try w.request(["op": "stats"])["batch"] as? [String: Any] ?? [:]
        #expect(batch["running"] as? Int == 0 && batch["waiting"] as? Int == 0 && batch["max"] as? Int == 1, "\(batch)")
        #expect(try w.stop() == 0)
    }

    /// An allowed but unusually long question (here ~1,500 tokens, with the limit raised):
    /// its prefill's buffers, whose attention part grows with the square of its length, are
    /// freed after it instead of staying with the worker (an ~8,100-token question used to
    /// leave it at 3.76 GB).
    @Test func aLongAllowedQuestionDoesNotKeepItsBuffers() throws {
        let w = try WorkerProcess(tag: "memory", extra: ["limits": ["maxQuestionTokens": 2048] as [String: Any]])
        defer { w.remove() }
        try w.start()
        let pid = w.process!.processIdentifier
        let sentence = "The quick brown fox jumps over the lazy dog. "
        // A first prefill past 32 rows makes the fp32 copies of the LLM's blocks (~425 MB,
        // kept by design: long prefills and prompt refinement use them); measure after it.
        #expect(try w.request(["op": "ask", "question": String(repeating: sentence, count: 8), "max_tokens": 1, "method": "none"]).ok)
        let before = residentKiB(pid)
        let long = try w.request(["op": "ask", "question": String(repeating: sentence, count: 140), "max_tokens": 1, "method": "none"])
        #expect(long.ok, "\(long)")
        let after = residentKiB(pid)
        #expect(after - before < 64 * 1024, "RSS grew from \(before) KiB to \(after) KiB")
        print("~1,500-token question: worker RSS \(before) KiB -> \(after) KiB")
        #expect(try w.stop() == 0)
    }

    /// Idle clients filling `limits.maxClients` cannot lock anyone out: each newcomer takes
    /// the place of the connection idle longest.
    @Test func idleClientsMakeRoomForNewOnes() throws {
        let w = try WorkerProcess(tag: "shed", extra: ["limits": ["maxClients": 3, "idleTimeoutSeconds": 300] as [String: Any]])
        defer { w.remove() }
        try w.start()
        var idle: [WorkerClient] = []
        for _ in 0..<3 {
            let c = try w.connect()
            #expect(try c.request(["op": "health"]).ok)
            idle.append(c)
        }
        var settled = false
        for _ in 0..<200 where !settled {
            settled = ((try idle[2].request(["op": "stats"]))["worker"] as? [String: Any])?["connections_open"] as? Int == 3
            if !settled { usleep(50_000) }
        }
        #expect(settled, "only the three idle clients are open")
        for (i, victim) in idle.prefix(2).enumerated() {
            let newcomer = try w.connect()
            let r = try newcomer.request(["op": "health"])
            #expect(r.ok, "newcomer \(i): \(r)")
            let told = try victim.readReply()
            #expect(told.errorCode == "shed", "\(told)")
            #expect((told["error"] as? [String: Any])?["message"] as? String ?? "" != "", "\(told)")
            #expect((try? victim.readLine()) == nil, "closed after shed")
            idle.append(newcomer)
        }
        // Two, or three when start()'s last health check was still open as the third idle
        // client came (the idle longest then, so shed first).
        let stats = try idle[2].request(["op": "stats"])
        #expect(((stats["worker"] as? [String: Any])?["connections_shed"] as? Int ?? 0) >= 2, "\(stats)")
        #expect(try w.stop() == 0)
    }

    /// SO_PEERCRED is read at accept; a reload that takes the uid off `socket.allowedUIDs`
    /// checks the open connections again and closes them with `forbidden`.
    @Test func aReloadClosesTheOpenConnectionsOfAUIDNoLongerAllowed() throws {
        let me = getuid()
        let other: UInt32 = me == 4242 ? 4243 : 4242
        let w = try WorkerProcess(tag: "revoke", extra: ["socket": ["allowedUIDs": [me]] as [String: Any],
                                                         "limits": ["idleTimeoutSeconds": 20] as [String: Any]])
        defer { w.remove() }
        try w.start()
        let open = try w.connect()
        #expect(try open.request(["op": "health"]).ok)
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: w.configPath))) as! [String: Any]
        var socket = config["socket"] as! [String: Any]
        socket["allowedUIDs"] = [other]
        config["socket"] = socket
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: w.configPath))
        kill(w.process!.processIdentifier, SIGHUP)
        let told = try open.readReply()
        #expect(told.errorCode == "forbidden", "\(told)")
        #expect((try? open.readLine()) == nil, "closed after forbidden")
        #expect(try w.request(["op": "health"]).errorCode == "forbidden", "and new connections are refused")
        #expect(w.logEvents("peer_revoked").first?["uid"] as? Int == Int(me), "\(w.logTail())")
        #expect(try w.stop() == 0)
    }

    @Test func thirtyTwoClientsAskWhileFactsStreamIn() throws {
        let w = try WorkerProcess(tag: "load")
        defer { w.remove() }
        try w.start()
        let clients = 32, asksPerClient = 3, facts = 1000
        let lock = NSLock()
        nonisolated(unsafe) var latencies: [Double] = []
        nonisolated(unsafe) var failures: [String] = []
        let group = DispatchGroup()
        let feedStart = Date()
        nonisolated(unsafe) var feedError: Error?
        let feeder = Thread {
            do {
                for batch in stride(from: 0, to: facts, by: 100) {
                    try w.feed((batch..<batch + 100).map { "Load fact number \($0) says the sky is color \($0 * 7 % 1000)" })
                    usleep(20_000)
                }
            } catch { feedError = error }
        }
        feeder.start()
        for t in 0..<clients {
            group.enter()
            Thread {
                defer { group.leave() }
                do {
                    let c = try w.connect()
                    defer { c.close() }
                    for i in 0..<asksPerClient {
                        let start = Date()
                        let r = try c.request(["op": "ask", "question": "Load fact number \(t * 31 + i) says the sky is", "max_tokens": 2])
                        let ms = Date().timeIntervalSince(start) * 1000
                        lock.withLock {
                            if r.ok { latencies.append(ms) } else { failures.append("\(r)") }
                        }
                    }
                } catch {
                    lock.withLock { failures.append("client \(t): \(error)") }
                }
            }.start()
        }
        group.wait()
        try w.waitForLiveFacts(facts, timeout: 120)
        let ingestSeconds = Date().timeIntervalSince(feedStart)
        #expect(feedError == nil)
        let (lat, fails) = lock.withLock { (latencies.sorted(), failures) }
        #expect(fails.isEmpty, "\(fails.prefix(3))")
        #expect(lat.count == clients * asksPerClient)

        // With the repository still, 32 asks at once (different lengths, so that answers
        // finish at different steps) get exactly the answers they get one at a time.
        let questions = (0..<clients).map { t in
            (question: "Load fact number \(t * 29 % facts) says the sky is", maxTokens: 2 + t % 4 * 2, chat: t % 5 == 4)
        }
        nonisolated(unsafe) var together = [[String: Any]](repeating: [:], count: clients)
        for (t, q) in questions.enumerated() {
            group.enter()
            Thread {
                defer { group.leave() }
                let r: [String: Any]
                do {
                    let c = try w.connect()
                    defer { c.close() }
                    r = try c.request(["op": "ask", "question": q.question, "max_tokens": q.maxTokens, "chat": q.chat])
                } catch { r = ["failed": "\(error)"] }
                lock.withLock { together[t] = r }
            }.start()
        }
        group.wait()
        for (t, q) in questions.enumerated() {
            let alone = try w.request(["op": "ask", "question": q.question, "max_tokens": q.maxTokens, "chat": q.chat])
            let both = lock.withLock { together[t] }
            #expect(both.ok && alone.ok, "\(both) \(alone)")
            for field in ["answer", "tokens", "stop_reason"] {
                #expect("\(both[field] ?? "nil")" == "\(alone[field] ?? "nil")", "ask \(t) \(field): \(both) together, \(alone) alone")
            }
            let fact = { (r: [String: Any]) in (r["fact"] as? [String: Any])?["id"].map { "\($0)" } }
            #expect(fact(both) == fact(alone) && fact(alone) != nil, "ask \(t): \(both) together, \(alone) alone")
        }
        let stats = try w.request(["op": "stats"])
        let errors = ((stats["worker"] as? [String: Any])?["errors"] as? [String: Any]) ?? [:]
        #expect(errors.isEmpty, "\(errors)")
        let batch = stats["batch"] as? [String: Any] ?? [:]
        #expect((batch["largest"] as? Int ?? 0) > 1 && batch["running"] as? Int == 0 && batch["max"] as? Int == 32, "\(batch)")
        #expect(try w.stop() == 0)
        if !lat.isEmpty {
            let p50 = lat[lat.count / 2], p99 = lat[min(lat.count - 1, Int(Double(lat.count) * 0.99))]
            print(String(format: "load: %d clients x %d asks (max_tokens 2) while %d facts streamed: ask p50 %.0f ms, p99 %.0f ms; ingest %.0f facts/s (all %d live after %.1f s)",
                         clients, asksPerClient, facts, p50, p99, Double(facts) / ingestSeconds, facts, ingestSeconds))
        }
    }

    @Test func socketModeAndAllowedUIDsComeFromTheConfig() throws {
        let other = getuid() == 4242 ? 4243 : 4242
        let w = try WorkerProcess(tag: "uid", extra: ["socket": ["mode": "0640", "allowedUIDs": [other]] as [String: Any]])
        defer { w.remove() }
        // start() waits for a healthy reply, which this uid never gets: wait for the file.
        try? w.start(timeout: 0.1)
        for _ in 0..<600 where !FileManager.default.fileExists(atPath: w.socket) { usleep(50_000) }
        let st = try FileSystem.status(w.socket)
        #expect(st.st_mode & 0o777 == 0o640 && (st.st_mode & S_IFMT) == S_IFSOCK)
        let refused = try w.request(["op": "health"])
        #expect(refused.errorCode == "forbidden", "\(refused)")
        // A live socket is never taken over by a second worker.
        let second = try WorkerProcess(tag: "uid2")
        defer { second.remove() }
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: second.configPath))) as! [String: Any]
        config["socket"] = ["path": w.socket]
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: second.configPath))
        #expect(throws: WorkerFailure.self) { try second.start(timeout: 30) }
        #expect(FileManager.default.fileExists(atPath: w.socket))
        #expect(try w.stop() == 0)
    }

    func residentKiB(_ pid: Int32) -> Int {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
        return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
    }
}
