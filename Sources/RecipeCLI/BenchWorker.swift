// A `recipe serve` child process for `recipe bench serve`: its config, repository and
// socket in one directory; started at init, reachable through `connect`, stopped with
// SIGTERM (the caller checks the exit status: a clean shutdown is part of the bench).
import Foundation
import Glibc
import WorkerAPI

/// A `recipe serve` child on a directory's repository and socket, for the bench.
struct BenchWorker {
    let process = Process()
    let socket: String

    /// The worker's prompt state file (`promptStates.file`).
    var promptStatesPath: String { repository + "/prompt-states" }
    let repository: String

    /// `maxClients`: the worker's `limits.maxClients` (the latency bench uses one connection;
    /// the load bench one per client, plus the fact stream's and its own).
    init(directory: String, maxTokens: Int, promptCache: Int, promptStates: Int, models: String?, threads: String?, checkpoint: String?,
         maxClients: Int = 4) throws {
        repository = directory + "/repo"
        socket = directory + "/s.sock"
        let limits: [String: Any] = ["maxGenerationTokens": max(maxTokens, 8), "defaultGenerationTokens": min(maxTokens, 8),
                                     "maxRequestBytes": 16 << 20, "maxClients": maxClients, "promptCacheEntries": promptCache]
        var config: [String: Any] = [
            "repository": repository, "inboxes": [], "pipes": [], "socket": ["path": socket],
            "limits": limits, "promptStates": ["capacity": promptStates], "logging": ["level": "warning"],
        ]
        if let models { config["models"] = models }
        if let checkpoint { config["checkpoint"] = checkpoint }
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: directory + "/worker.json"))
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        process.arguments = ["serve", "--config", directory + "/worker.json"] + (threads.map { ["--threads", $0] } ?? [])
        process.standardError = FileHandle.standardError
        try process.run()
    }

    /// Waits (up to 10 minutes: models load, the repository opens) for the socket.
    func connect() throws -> WorkerClient {
        for _ in 0..<6000 {
            guard process.isRunning else { throw UsageError("the worker exited with \(process.terminationStatus)") }
            if let c = try? WorkerClient(path: socket) { return c }
            usleep(100_000)
        }
        _ = stop()
        throw UsageError("the worker did not start listening within 10 minutes")
    }

    /// SIGTERM, then its exit status.
    func stop() -> Int32 {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        process.waitUntilExit()
        return process.terminationStatus
    }
}
