// A three-node NATS JetStream cluster (or one server) on loopback ports for the tests: config files
// written here (JetStream on, a cluster route to every other node, user/password
// authorization), nodes started, killed (SIGKILL) and restarted by the test, every one
// killed when the cluster object goes away, even when the test failed.
import Foundation
import Glibc
import NATS

final class NATSCluster: @unchecked Sendable {
    struct Node {
        let name: String
        let clientPort: Int
        let routePort: Int
        let configPath: String
        var process: Process?
    }

    static let user = "recipe"
    static let password = "fleet-s3cret"
    let root: String
    private(set) var nodes: [Node] = []

    /// nats-server from PATH or where Debian installs it (Pipelines/setup.sh).
    static let binary: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let dirs = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/bin", "/usr/local/bin"]
        return dirs.map { $0 + "/nats-server" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    init(root: String, size: Int = 3) throws {
        self.root = root
        let ports = try Self.freePorts(2 * size)
        for i in 0..<size {
            let name = "n\(i + 1)"
            let dir = root + "/" + name
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let routes = (0..<size).filter { $0 != i }.map { "nats-route://127.0.0.1:\(ports[size + $0])" }
            let config = """
            server_name: \(name)
            listen: 127.0.0.1:\(ports[i])
            jetstream { store_dir: "\(dir)/js", max_memory_store: 64MB, max_file_store: 1GB }
            \(size == 1 ? "" : "cluster { name: recipe-test, listen: 127.0.0.1:\(ports[size + i]), routes: [\(routes.joined(separator: ", "))] }")
            authorization { user: \(Self.user), password: "\(Self.password)" }
            """
            let path = dir + "/nats.conf"
            try config.write(toFile: path, atomically: true, encoding: .utf8)
            nodes.append(Node(name: name, clientPort: ports[i], routePort: ports[size + i], configPath: path))
        }
    }

    deinit { for i in nodes.indices { kill(i) } }

    var urls: [String] { nodes.map { "nats://127.0.0.1:\($0.clientPort)" } }

    func start(_ i: Int) throws {
        guard let binary = Self.binary else { throw WorkerFailure("nats-server not installed: run Pipelines/setup.sh (apt-get install nats-server)") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = ["-c", nodes[i].configPath]
        let log = root + "/" + nodes[i].name + ".log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: log)
        p.standardError = FileHandle(forWritingAtPath: log)
        try p.run()
        nodes[i].process = p
    }

    func startAll() throws { for i in nodes.indices { try start(i) } }

    /// SIGKILL: the node dies as in a power cut.
    func kill(_ i: Int) {
        guard let p = nodes[i].process else { return }
        if p.isRunning { Glibc.kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        nodes[i].process = nil
    }

    var credentials: NATSCredentials { NATSCredentials(user: Self.user, password: Self.password) }

    /// Creates the stream with `replicas` copies once the cluster has elected its
    /// JetStream leader (retried until `timeout`).
    func createStream(_ name: String, subjects: [String], replicas: Int, timeout: Double = 60) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var last: Error = WorkerFailure("not tried")
        while Date() < deadline {
            do {
                let conn = try NATSConnection(server: NATSServerAddress(parsing: urls[0]), credentials: credentials)
                defer { conn.close() }
                let js = try JetStreamClient(connection: conn, timeoutMilliseconds: 3000)
                try js.createStream(name, subjects: subjects, replicas: replicas)
                _ = try js.streamState(name)
                return
            } catch {
                last = error
                usleep(300_000)
            }
        }
        throw WorkerFailure("stream \(name) not created within \(timeout) s: \(last)")
    }

    /// Ports the kernel hands out for 127.0.0.1:0, released for the servers to take.
    static func freePorts(_ n: Int) throws -> [Int] {
        var fds: [Int32] = [], ports: [Int] = []
        defer { for fd in fds { close(fd) } }
        for _ in 0..<n {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw WorkerFailure("socket failed") }
            fds.append(fd)
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_addr.s_addr = inet_addr("127.0.0.1")
            a.sin_port = 0
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let ok = withUnsafeMutablePointer(to: &a) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
            }
            guard ok else { throw WorkerFailure("bind failed") }
            ports.append(Int(UInt16(bigEndian: a.sin_port)))
        }
        return ports
    }
}
