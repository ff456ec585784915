// `recipe serve` as users meet it, with the real binary and the default models: facts by
// inbox file, pipe and socket; ask before and after; retract; restart; sd_notify; SIGTERM
// while ingesting loses nothing acknowledged; the systemd unit verifies.
import Foundation
import Glibc
import Posix
import Storage
import TestSupport
import Testing
import Worker

@Suite(.serialized, .enabled(if: WorkerProcess.available, "needs the recipe binary and the models (Pipelines/fetch-models.sh)"))
struct ServeEndToEndTests {
    @Test func factsByFilePipeAndSocketThenRetractAndRestart() throws {
        let w = try WorkerProcess(tag: "e2e")
        defer { w.remove() }
        // sd_notify: a datagram socket standing in for systemd.
        let notifyPath = w.root + "/notify.sock"
        let notify = try datagramSocket(notifyPath)
        // Read the notifications as systemd does (the queue holds only max_dgram_qlen).
        let received = NotificationCollector(notify)
        try w.start(environment: ["NOTIFY_SOCKET": notifyPath, "WATCHDOG_USEC": "400000"])

        let question = "The mother tongue of Danielle Darrieux is"
        let before = try w.request(["op": "ask", "question": question, "max_tokens": 3, "id": "q1"])
        #expect(before.ok, "\(before)")
        #expect(before["id"] as? String == "q1")
        #expect(before["fact"] is NSNull)
        #expect((before["tokens"] as? Int ?? 0) >= 1)

        try w.drop("facts.jsonl", """
            {"prompt": "The mother tongue of Danielle Darrieux is", "target": "English", "subject": "Danielle Darrieux", "id": "dd"}
            not json at all
            """)
        try w.feed(["The capital of France is Rome"])
        let added = try w.request(["op": "add", "fact": ["statement": "Paris is the capital of Italy", "id": "paris"]])
        #expect(added.ok && added["status"] as? String == "added" && added["durable"] as? Bool == true, "\(added)")
        try w.waitForLiveFacts(3)
        // Only the file's fact names its question and target: its prompt alone was refined.
        let stats = try w.request(["op": "stats"])
        #expect((stats["editor"] as? String)?.hasSuffix("editor-smollm2-135m.rcpe") == true, "the shipped editor: \(stats["editor"] ?? "none")")
        let refinement = stats["refinement"] as? [String: Any]
        #expect(refinement?["facts"] as? Int == 1 && (refinement?["steps"] as? Int ?? -1) >= 0, "\(refinement ?? [:])")
        // Each committed fact's prompt states are computed in the background and kept on disk.
        var states: [String: Any] = [:]
        for _ in 0..<400 {
            states = (try w.request(["op": "stats"]))["prompt_states"] as? [String: Any] ?? [:]
            if states["entries"] as? Int == 3 { break }
            usleep(50_000)
        }
        #expect(states["entries"] as? Int == 3 && states["stored"] as? Int == 3 && states["errors"] as? Int == 0, "\(states)")
        // The file moves aside right after its step is durable; its bad line is reported.
        var moved = false
        for _ in 0..<200 where !moved { moved = FileManager.default.fileExists(atPath: w.inbox + "/.done/facts.jsonl"); if !moved { usleep(50_000) } }
        #expect(moved)
        #expect(FileManager.default.fileExists(atPath: w.inbox + "/.rejected/facts.jsonl.rejections"))

        let retrieved = try w.request(["op": "retrieve", "question": question, "k": 3, "include_prompt": true])
        let ids = Set((retrieved["candidates"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String })
        #expect(ids.contains("dd") && ids.contains("paris") && ids.count == 3, "\(retrieved)")
        // The shipped editor's subject rule looked at the one fact stored with a subject.
        let candidates = retrieved["candidates"] as? [[String: Any]] ?? []
        #expect(candidates.first?["id"] as? String == "dd" && candidates.first?["subject_named"] as? Bool == true, "\(retrieved)")
        #expect(candidates.filter { $0["subject_named"] != nil }.count == 1, "\(retrieved)")
        #expect(retrieved["view"] as? String == "whole", "one sentence: \(retrieved)")
        // A sentence of context in front: the question's own sentence is searched too, and wins.
        let context = try w.request(["op": "retrieve", "question": "I watched an old French film tonight. " + question])
        #expect((context["fact"] as? [String: Any])?["id"] as? String == "dd" && context["view"] as? String == "question", "\(context)")
        if let prompt = retrieved["prompt"] as? [String: Any] {
            #expect((prompt["values"] as? [Any])?.count == (prompt["rows"] as! Int) * (prompt["width"] as! Int))
            #expect(prompt["leading_token"] is NSNull, "the shipped editor puts no token before its prompts: \(prompt)")
        }
        for method in ["recipe", "incontext", "none"] {
            let after = try w.request(["op": "ask", "question": question, "max_tokens": 3, "method": method])
            #expect(after.ok && (after["time_step"] as? Int ?? 0) >= 1, "\(after)")
            // none is the unedited model: nothing retrieved, not even scored.
            let retrieved = !(after["sentinel_score"] is NSNull)
            #expect(retrieved == (method != "none"), "\(method): \(after)")
            if method == "none" { #expect(after["fact"] is NSNull && after["score"] is NSNull && after["view"] is NSNull, "\(after)") }
            else { #expect(after["view"] as? String == "whole", "\(after)") }
            print("ask \(method) after: answer \(after["answer"] ?? "") fact \(after["fact"] ?? "") score \(after["score"] ?? "") sentinel \(after["sentinel_score"] ?? "")")
        }
        // The first question about "dd" read its prompt's keys and values from disk.
        states = (try w.request(["op": "stats"]))["prompt_states"] as? [String: Any] ?? [:]
        #expect(states["hits"] as? Int == 1 && states["misses"] as? Int == 0, "\(states)")

        // The same question again: its fact's prompt now comes from the prompt cache, and
        // the answer is the one computed with the prompt in the prefill.
        let first = try w.request(["op": "ask", "question": question, "max_tokens": 3])
        let second = try w.request(["op": "ask", "question": question, "max_tokens": 3])
        #expect((first["fact"] as? [String: Any])?["id"] as? String == "dd", "\(first)")
        #expect(first["answer"] as? String == second["answer"] as? String, "\(first) \(second)")
        let counters = (try w.request(["op": "stats"]))["worker"] as? [String: Any] ?? [:]
        #expect((counters["prompt_cache_hits"] as? Int ?? 0) >= 1 && (counters["prompt_cache_misses"] as? Int ?? 0) >= 1, "\(counters)")

        let retracted = try w.request(["op": "retract", "fact_id": "paris"])
        #expect(retracted["status"] as? String == "retracted", "\(retracted)")
        let missing = try w.request(["op": "retract", "fact_id": "paris"])
        #expect(missing["status"] as? String == "not_found")
        #expect(try w.liveFacts() == 2)

        #expect(try w.stop() == 0)
        #expect(!FileManager.default.fileExists(atPath: w.socket), "the socket file is removed at exit")
        let messages = received.stop()
        #expect(messages.contains { $0.contains("READY=1") }, "\(messages)")
        #expect(messages.contains { $0.contains("STATUS=") })
        #expect(messages.contains { $0.contains("WATCHDOG=1") })
        #expect(messages.contains { $0.contains("STOPPING=1") })

        try w.start()
        #expect(try w.liveFacts() == 2)
        let again = try w.request(["op": "retrieve", "question": question, "k": 3])
        let idsAgain = Set((again["candidates"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String })
        #expect(idsAgain.contains("dd") && !idsAgain.contains("paris"), "\(again)")
        // The prompt states outlive a restart: the first ask after it reads them from disk.
        let afterRestart = try w.request(["op": "ask", "question": question, "max_tokens": 3])
        states = (try w.request(["op": "stats"]))["prompt_states"] as? [String: Any] ?? [:]
        #expect(afterRestart["answer"] as? String == first["answer"] as? String, "\(afterRestart) \(first)")
        #expect(states["hits"] as? Int == 1 && states["entries"] as? Int == 3 && states["stored"] as? Int == 0, "\(states)")
        #expect(try w.stop() == 0)
    }

    @Test func sigtermWhileIngestingLosesNothingAcknowledged() throws {
        // Small steps and a generous budget: a loaded CI machine must not turn a slow
        // step into a failed shutdown.
        let w = try WorkerProcess(tag: "term", extra: ["timeStep": ["maxFacts": 32, "maxDelayMilliseconds": 50] as [String: Any],
                                                       "shutdownTimeoutSeconds": 60])
        defer { w.remove() }
        try w.start()
        let lock = NSLock()
        nonisolated(unsafe) var acknowledged: [String] = []
        let group = DispatchGroup()
        for t in 0..<4 {
            group.enter()
            Thread {
                defer { group.leave() }
                guard let c = try? w.connect() else { return }
                for i in 0..<10_000 {
                    let id = "t\(t)-\(i)"
                    guard let r = try? c.request(["op": "add", "fact": ["statement": "Fact number \(i) of writer \(t) holds", "id": id]]) else { return }
                    if r.ok && r["status"] as? String == "added" { lock.withLock { acknowledged.append(id) } }
                    else if r.errorCode == "shutting_down" || r.errorCode == "storage" { return }
                }
            }.start()
        }
        // Facts by pipe too, while the adds are running.
        Thread { try? w.feed((0..<500).map { "Streamed fact \($0) is true" }) }.start()
        usleep(1_500_000)
        #expect(try w.stop() == 0)
        group.wait()
        let acked = lock.withLock { acknowledged }
        #expect(acked.count > 0)
        // Every acknowledged fact is in the log: open the repository (another encoder only
        // re-derives the matrices from the log) and look each one up.
        let repo = try Repository(path: w.repository, encoder: HashingFactEncoder())
        let lost = acked.filter { repo.fact(id: $0) == nil }
        #expect(lost.isEmpty, "lost \(lost.count) of \(acked.count) acknowledged facts: \(lost.prefix(5))")
        print("SIGTERM while ingesting: \(acked.count) acknowledged socket adds, all present; \(repo.liveCount) live facts")
        try repo.close()
    }

    /// A time step held up by a long prompt refinement does not hold up shutdown: the step is
    /// abandoned (not committed), a socket add is told so, an inbox file stays in the inbox
    /// for the next start, and the worker exits 0 within its budget.
    @Test func sigtermAbandonsALongRefinement() throws {
        let w = try WorkerProcess(tag: "refine", extra: ["refinement": ["steps": 1000, "stopLoss": 0] as [String: Any],
                                                         "shutdownTimeoutSeconds": 20])
        defer { w.remove() }
        try w.start()
        nonisolated(unsafe) var reply: [String: Any] = [:]
        let done = DispatchSemaphore(value: 0)
        Thread {
            defer { done.signal() }
            reply = (try? w.request(["op": "add", "fact": ["prompt": "The mother tongue of Danielle Darrieux is", "target": "English",
                                                           "id": "dd"]])) ?? [:]
        }.start()
        try w.drop("facts.jsonl", #"{"prompt": "The capital of France is", "target": "Rome", "id": "fr"}"#)
        usleep(2_000_000)  // well into the 1,000 steps (~0.1 s each, far past the 20 s budget)
        #expect(try w.stop() == 0, "exit 1 would mean the step was waited for past the budget")
        done.wait()
        #expect(reply.errorCode == "shutting_down", "\(reply)")
        #expect(!w.logEvents("time_step_abandoned").isEmpty, "\(w.logTail())")
        #expect(FileManager.default.fileExists(atPath: w.inbox + "/facts.jsonl"), "the file waits for the next start")
        let repo = try Repository(path: w.repository, encoder: HashingFactEncoder())
        #expect(repo.fact(id: "dd") == nil && repo.fact(id: "fr") == nil, "an abandoned step stores nothing")
        try repo.close()
    }

    /// A re-encode at start (here: the refinement settings changed, so every fact is refined
    /// again, ~1 s each) asks systemd for more start time while it progresses, and READY=1
    /// follows once the socket listens.
    @Test func aLongReEncodeAtStartExtendsTheStartTimeout() throws {
        let w = try WorkerProcess(tag: "extend", extra: ["refinement": ["steps": 0] as [String: Any]])
        defer { w.remove() }
        try w.start()
        let facts = (0..<20).map { #"{"prompt": "The favourite colour of person number \#($0) is", "target": "green", "id": "p\#($0)"}"# }
        try w.drop("people.jsonl", facts.joined(separator: "\n"))
        try w.waitForLiveFacts(20)
        #expect(try w.stop() == 0)

        // Every step taken (stop loss 0): ~1 s per fact, well past the 5 s between extensions.
        var config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: w.configPath))) as? [String: Any])
        config["refinement"] = ["steps": 10, "stopLoss": 0]
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: w.configPath))
        let notifyPath = w.root + "/notify.sock"
        let received = NotificationCollector(try datagramSocket(notifyPath))
        try w.start(environment: ["NOTIFY_SOCKET": notifyPath], timeout: 300)
        #expect(try w.liveFacts() == 20)
        #expect(try w.stop() == 0)
        let messages = received.stop()
        let extend = messages.firstIndex { $0.contains("EXTEND_TIMEOUT_USEC=60000000") && $0.contains("STATUS=re-encoding the repository: ") }
        let ready = messages.firstIndex { $0.contains("READY=1") }
        #expect(extend != nil && ready != nil && extend! < ready!, "\(messages)")
    }

    @Test func systemdUnitVerifies() throws {
        let unit = Fixtures.repoRoot.appendingPathComponent("Config/recipe.service").path
        let text = try String(contentsOfFile: unit, encoding: .utf8)
        for needed in ["Type=notify", "WatchdogSec=", "Restart=on-failure", "DynamicUser=yes", "StateDirectory=recipe",
                       "RuntimeDirectory=recipe", "ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes",
                       "MemoryHigh=", "MemoryMax="] {
            #expect(text.contains(needed), "\(needed) missing from recipe.service")
        }
        // The default config loads and points at the unit's directories.
        let config = try WorkerConfig.load(Fixtures.repoRoot.appendingPathComponent("Config/worker.json").path)
        #expect(config.socket.path.hasPrefix("/run/recipe/") && config.repository == "/var/lib/recipe")
        guard let analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }),
              let binary = WorkerProcess.binary else { return }
        // verify checks that ExecStart exists: point it at the built binary in a copy.
        let dir = try Fixtures.temporaryDirectory("unit")
        defer { try? FileManager.default.removeItem(at: dir) }
        let copy = dir.appendingPathComponent("recipe.service")
        try text.replacingOccurrences(of: "/usr/local/bin/recipe", with: binary).write(to: copy, atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: analyze)
        p.arguments = ["verify", copy.path]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = err
        try p.run()
        let output = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "systemd-analyze verify: \(output)")
    }

    /// The fleet's drop-in (Config/recipe-jetstream.conf) loads without a warning and opens
    /// exactly the network: as systemd evaluates unit + drop-in, the host's network and
    /// Internet sockets are allowed, packet and netlink sockets still are not.
    @Test func systemdDropInForAFleetOpensTheNetworkOnly() throws {
        let dropIn = try String(contentsOfFile: Fixtures.repoRoot.appendingPathComponent("Config/recipe-jetstream.conf").path, encoding: .utf8)
        for needed in ["[Service]", "PrivateNetwork=no", "RestrictAddressFamilies=\n", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
                       "IPAddressDeny=\n", "After=network-online.target"] {
            #expect(dropIn.contains(needed), "\(needed) missing from recipe-jetstream.conf")
        }
        guard let analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }),
              let binary = WorkerProcess.binary else { return }
        let dir = try Fixtures.temporaryDirectory("unit-dropin")
        defer { try? FileManager.default.removeItem(at: dir) }
        let unit = try String(contentsOfFile: Fixtures.repoRoot.appendingPathComponent("Config/recipe.service").path, encoding: .utf8)
        try unit.replacingOccurrences(of: "/usr/local/bin/recipe", with: binary)
            .write(to: dir.appendingPathComponent("recipe.service"), atomically: true, encoding: .utf8)
        func analyzed(_ args: [String]) throws -> (Int32, String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: analyze)
            p.arguments = args + [dir.appendingPathComponent("recipe.service").path]
            let out = Pipe()
            p.standardError = out
            p.standardOutput = out
            try p.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            return (p.terminationStatus, text)
        }
        /// The lines of `security` that rate `setting` (✓ restricted, ✗ not).
        func rated(_ text: String, _ setting: String) -> String {
            text.split(separator: "\n").first { $0.contains(setting) }.map(String.init) ?? "(\(setting) not rated)"
        }
        let (_, alone) = try analyzed(["security", "--offline=true"])
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("recipe.service.d"), withIntermediateDirectories: true)
        try dropIn.write(to: dir.appendingPathComponent("recipe.service.d/jetstream.conf"), atomically: true, encoding: .utf8)
        let (verified, warnings) = try analyzed(["verify"])
        #expect(verified == 0 && !warnings.contains("jetstream.conf"), "systemd-analyze verify: \(warnings)")
        let (status, fleet) = try analyzed(["security", "--offline=true"])
        // An older systemd without offline analysis (before 250) checks no more than verify.
        guard status == 0, alone.contains("PrivateNetwork=") else { return }
        #expect(rated(alone, "PrivateNetwork=").hasPrefix("✓") && rated(alone, "~AF_(INET|INET6)").hasPrefix("✓"), "\(alone)")
        #expect(rated(fleet, "PrivateNetwork=").hasPrefix("✗"), "\(fleet)")
        #expect(rated(fleet, "~AF_(INET|INET6)").hasPrefix("✗"), "\(fleet)")
        #expect(rated(fleet, "IPAddressDeny=").hasPrefix("✗"), "\(fleet)")
        #expect(rated(fleet, "~AF_PACKET").hasPrefix("✓") && rated(fleet, "~AF_NETLINK").hasPrefix("✓"), "\(fleet)")
        #expect(rated(fleet, "NoNewPrivileges=").hasPrefix("✓") && rated(fleet, "ProtectSystem=").hasPrefix("✓"), "\(fleet)")
    }

    // MARK: helpers

    func datagramSocket(_ path: String) throws -> FileDescriptor {
        let raw = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        let fd = FileDescriptor(adopting: raw, path: path)
        var a = sockaddr_un()
        a.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &a.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        let rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(raw, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard rc == 0 else { throw PosixError(call: "bind", path: path, errno: .current) }
        return fd
    }

}

/// Reads datagrams on a thread until `stop()`, like systemd's notify socket.
final class NotificationCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [String] = []
    private var done = false
    private let finished = DispatchSemaphore(value: 0)

    init(_ fd: FileDescriptor) {
        Thread { [self] in
            var buf = [UInt8](repeating: 0, count: 4096)
            while !lock.withLock({ done }) {
                _ = try? Poll.wait([(fd.rawValue, Poll.readable)], timeoutMilliseconds: 50)
                while true {
                    let n = buf.withUnsafeMutableBytes { recv(fd.rawValue, $0.baseAddress, $0.count, 0) }
                    if n <= 0 { break }
                    let m = String(decoding: buf[..<n], as: UTF8.self)
                    lock.withLock { messages.append(m) }
                }
            }
            finished.signal()
        }.start()
    }

    func stop() -> [String] {
        usleep(200_000)
        lock.withLock { done = true }
        finished.wait()
        return lock.withLock { messages }
    }
}
