// Runs the real `recipe serve` binary for the end-to-end tests: a temporary repository,
// inbox, pipe and socket, a config file, and helpers to talk to it and stop it.
import Foundation
import Glibc
import Posix
import TestSupport
import Worker
import WorkerAPI

struct WorkerFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

final class WorkerProcess: @unchecked Sendable {
    let root: String
    let configPath: String
    var socket: String { root + "/w.sock" }
    var repository: String { root + "/repo" }
    var inbox: String { root + "/repo/inbox" }
    var pipe: String { root + "/repo/feed.pipe" }
    var logPath: String { root + "/worker.log" }
    private(set) var process: Process?

    /// The binary next to the test bundle (same configuration), else .build/{release,debug}.
    static let binary: String? = {
        var candidates: [String] = []
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            var dir = (exe as NSString).deletingLastPathComponent
            if dir.hasSuffix(".xctest") { dir = (dir as NSString).deletingLastPathComponent }
            candidates.append(dir + "/recipe")
        }
        let build = Fixtures.repoRoot.appendingPathComponent(".build").path
        candidates += [build + "/release/recipe", build + "/debug/recipe"]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    static var available: Bool {
        binary != nil && FileManager.default.fileExists(atPath: Fixtures.smolLM2.path)
            && FileManager.default.fileExists(atPath: Fixtures.miniLM.path)
    }

    /// Creates the directory and the config; `extra` is merged into the config object.
    init(tag: String, extra: [String: Any] = [:]) throws {
        root = try Fixtures.temporaryDirectory(tag).path
        configPath = root + "/worker.json"
        var config: [String: Any] = [
            "repository": root + "/repo", "models": Fixtures.models.path,
            "inboxes": ["inbox"], "pipes": ["feed.pipe"],
            "socket": ["path": root + "/w.sock"],
            "limits": ["defaultGenerationTokens": 2, "maxGenerationTokens": 8] as [String: Any],
            "timeStep": ["maxDelayMilliseconds": 50] as [String: Any],
            "logging": ["level": "info", "file": root + "/worker.log"] as [String: Any],
        ]
        for (k, v) in extra {
            if let sub = v as? [String: Any], let base = config[k] as? [String: Any] {
                config[k] = base.merging(sub) { $1 }
            } else {
                config[k] = v
            }
        }
        try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted]).write(to: URL(fileURLWithPath: configPath))
    }

    /// Starts the worker and waits until its socket answers `health`.
    func start(environment: [String: String] = [:], timeout: Double = 60) throws {
        guard let binary = Self.binary else { throw WorkerFailure("no recipe binary") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = ["serve", "--config", configPath, "--threads", "2"]
        var env = ProcessInfo.processInfo.environment
        env["NOTIFY_SOCKET"] = nil
        for (k, v) in environment { env[k] = v }
        p.environment = env
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        process = p
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if !p.isRunning { throw WorkerFailure("worker exited with \(p.terminationStatus) during start; log: \(logTail())") }
            if let r = try? request(["op": "health"]), r["ok"] as? Bool == true { return }
            usleep(50_000)
        }
        throw WorkerFailure("worker did not answer within \(timeout) s; log: \(logTail())")
    }

    /// SIGTERM, then waits; returns the exit status (or throws after `timeout`).
    @discardableResult
    func stop(timeout: Double = 30) throws -> Int32 {
        guard let p = process else { return 0 }
        kill(p.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            throw WorkerFailure("worker did not stop within \(timeout) s")
        }
        process = nil
        return p.terminationStatus
    }

    deinit { if let p = process, p.isRunning { kill(p.processIdentifier, SIGKILL) } }

    func connect() throws -> WorkerClient { try WorkerClient(path: socket, timeoutSeconds: 120) }

    /// One request on a fresh connection.
    func request(_ r: [String: Any]) throws -> [String: Any] {
        let c = try connect()
        defer { c.close() }
        return try c.request(r)
    }

    func liveFacts() throws -> Int {
        ((try request(["op": "stats"]))["repository"] as? [String: Any])?["live_facts"] as? Int ?? -1
    }

    /// Waits until `liveFacts() == n`.
    func waitForLiveFacts(_ n: Int, timeout: Double = 60) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var last = -1
        while Date() < deadline {
            last = try liveFacts()
            if last == n { return }
            usleep(50_000)
        }
        throw WorkerFailure("expected \(n) live facts, have \(last)")
    }

    /// Writes a file into the inbox atomically (temporary dotfile, then rename).
    func drop(_ name: String, _ text: String) throws {
        let tmp = inbox + "/." + name + ".tmp"
        try Data(text.utf8).write(to: URL(fileURLWithPath: tmp))
        try FileSystem.rename(tmp, to: inbox + "/" + name)
    }

    /// Writes lines to the named pipe (the worker holds it open for reading).
    func feed(_ lines: [String]) throws {
        let fd = try FileDescriptor.open(pipe, O_WRONLY)
        defer { try? fd.close() }
        try fd.writeAll(Array((lines.joined(separator: "\n") + "\n").utf8))
    }

    func logTail() -> String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)).map { String($0.suffix(2000)) } ?? "(no log)"
    }

    func logEvents(_ name: String) -> [[String: Any]] {
        guard let text = try? String(contentsOfFile: logPath, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }.filter { $0["event"] as? String == name }
    }

    func remove() { try? FileManager.default.removeItem(atPath: root) }
}

extension Dictionary where Key == String, Value == Any {
    var ok: Bool { self["ok"] as? Bool == true }
    var errorCode: String? { (self["error"] as? [String: Any])?["code"] as? String }
}
