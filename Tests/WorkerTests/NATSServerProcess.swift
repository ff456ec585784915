// One nats-server with JetStream on a free loopback port, configured by its command line
// alone (`--user/--pass`, `--auth TOKEN`), as an operator starts one for a quick setup;
// killed when the object goes away, even when the test failed.
import Foundation
import Glibc
import NATS

final class NATSServerProcess: @unchecked Sendable {
    let port: Int
    let root: String
    private let process = Process()

    var url: String { "nats://127.0.0.1:\(port)" }
    var address: NATSServerAddress { NATSServerAddress(host: "127.0.0.1", port: port) }

    /// Starts it with `arguments` (besides address, port and JetStream) and waits until it
    /// accepts connections (up to 200 tries, 50 ms apart).
    init(root: String, arguments: [String]) throws {
        guard let binary = NATSCluster.binary else { throw WorkerFailure("nats-server not installed: run Pipelines/setup.sh (apt-get install nats-server)") }
        self.root = root
        port = try NATSCluster.freePorts(1)[0]
        try FileManager.default.createDirectory(atPath: root + "/js", withIntermediateDirectories: true)
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["-a", "127.0.0.1", "-p", "\(port)", "-js", "-sd", root + "/js"] + arguments
        let log = root + "/nats.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: log)
        process.standardError = FileHandle(forWritingAtPath: log)
        try process.run()
        for _ in 0..<200 {
            guard process.isRunning else { throw WorkerFailure("nats-server exited: \(logTail())") }
            if accepts() { return }
            usleep(50_000)
        }
        throw WorkerFailure("nats-server does not accept connections: \(logTail())")
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    func logTail() -> String {
        String(((try? String(contentsOfFile: root + "/nats.log", encoding: .utf8)) ?? "").suffix(2000))
    }

    /// A TCP connection to the port succeeds (the server is listening).
    private func accepts() -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        a.sin_port = in_port_t(UInt16(port).bigEndian)
        return withUnsafePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
