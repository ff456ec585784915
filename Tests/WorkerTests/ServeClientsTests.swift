// The socket under bad clients and under load, against the real `recipe serve`: garbage
// bytes, a 100 MB line, a client that never sends, one that leaves mid-reply, too many
// clients, SIGHUP; then 32 concurrent askers while facts stream in through the pipe.
import Foundation
import Glibc
import Posix
import TestSupport
import Testing
import Worker

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

        // Too many clients: the extra one is told busy and closed; the others still work.
        var quiet = false
        for _ in 0..<1200 where !quiet {
            let open = ((try w.request(["op": "stats"]))["worker"] as? [String: Any])?["connections_open"] as? Int ?? 0
            quiet = open <= 1
            if !quiet { usleep(50_000) }
        }
        #expect(quiet, "earlier connections are still open")
        // Fill every slot with a client the worker has answered (so it is registered). A
        // connection the worker has not reaped yet (the stats requests above) can still hold
        // a slot for a moment on a busy machine: a client told busy then retries.
        var held: [WorkerClient] = []
        var attempts = 0
        while held.count < 6 && attempts < 200 {
            attempts += 1
            let c = try w.connect()
            if (try? c.request(["op": "health"]))?.ok == true { held.append(c) } else { c.close(); usleep(50_000) }
        }
        #expect(held.count == 6, "could fill only \(held.count) of 6 client slots")
        let extra = try w.connect()
        #expect(try extra.readReply().errorCode == "busy")
        #expect(try held[0].request(["op": "health"]).ok)
        held.forEach { $0.close() }
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
        let stats = try w.request(["op": "stats"])
        let errors = ((stats["worker"] as? [String: Any])?["errors"] as? [String: Any]) ?? [:]
        #expect(errors.isEmpty, "\(errors)")
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
