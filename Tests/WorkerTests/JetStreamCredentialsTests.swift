// Credentials against a nats-server configured by its command line: user and password
// (`--user/--pass`, sent as CONNECT `user`/`pass`) and a token (`--auth`, sent as
// `auth_token`), from the worker's config and from the server URL; and a user NKEY (its
// public key in the server's config, the nonce signed: CONNECT `nkey`/`sig`). Wrong ones give an
// error that names the server and says that authorization failed; the stream source
// retries with a growing pause, and a worker keeps answering its socket meanwhile. A server
// that requires TLS is refused at its INFO, before anything is sent in plain text.
import Foundation
import Glibc
import NATS
import Posix
import Storage
import TestSupport
import Testing
import Worker

@Suite(.serialized, .enabled(if: NATSCluster.binary != nil, "needs nats-server (Pipelines/setup.sh)"))
struct JetStreamCredentialsTests {
    static let user = "feeder"
    /// ':' and '@' must survive the URL form (percent-escaped there).
    static let password = "p4ss:w0rd@x"
    static let token = "t0ken-s3cret"

    func config(_ server: NATSServerProcess, user: String? = nil, password: String? = nil, token: String? = nil) -> WorkerConfig.JetStream {
        var c = WorkerConfig.JetStream()
        c.servers = [server.url]
        c.stream = "facts"
        c.subject = "facts.in"
        c.durable = "creds"
        c.user = user
        c.password = password
        c.token = token
        c.batch = 8
        c.expiresMilliseconds = 300
        c.reconnectMaxSeconds = 0.4
        return c
    }

    /// Creates the stream and stores `count` statements in it with `credentials`.
    func fill(_ server: NATSServerProcess, _ credentials: NATSCredentials, count: Int) throws {
        let conn = try NATSConnection(server: server.address, credentials: credentials)
        defer { conn.close() }
        #expect(conn.jetStreamEnabled)
        try JetStreamClient(connection: conn).createStream("facts", subjects: ["facts.in"], replicas: 1)
        let p = JetStreamPublisher(servers: [server.address], credentials: credentials, subject: "facts.in")
        for i in 1...count { try p.publish(Array("Credential test statement number \(i)".utf8), id: "c-\(i)") }
        #expect(try p.finish().published == count)
        p.close()
    }

    /// Stream sequences the source delivers, until `count` arrived (at most 400 polls).
    func consume(_ c: WorkerConfig.JetStream, count: Int) throws -> (sequences: [Int], status: [String: Any]) {
        let s = try JetStreamSource(config: c, parser: FactParser(sourceKind: .pipe), appliedThrough: 0, log: nil)
        defer { s.close() }
        var got: [Int] = []
        for _ in 0..<400 where got.count < count {
            if let fd = s.descriptor { _ = try? Poll.wait([(fd, Poll.readable)], timeoutMilliseconds: 50) } else { usleep(50_000) }
            if let b = s.take() {
                got += b.facts.map(\.line)
                s.complete(b)
            }
        }
        return (got, s.status.summary() ?? [:])
    }

    /// The error a connection with `credentials` fails with (nil when it connects).
    func refusal(_ server: NATSServerProcess, _ credentials: NATSCredentials) -> NATSError? {
        do {
            let c = try NATSConnection(server: server.address, credentials: credentials)
            c.close()
            return nil
        } catch let e as NATSError { return e } catch { return .closed(server: "\(error)") }
    }

    @Test func userAndPasswordFromTheConfigOrTheURLAreAccepted() throws {
        let root = try Fixtures.temporaryDirectory("nats-user").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let server = try NATSServerProcess(root: root, arguments: ["--user", Self.user, "--pass", Self.password])
        try fill(server, NATSCredentials(user: Self.user, password: Self.password), count: 3)

        let (sequences, status) = try consume(config(server, user: Self.user, password: Self.password), count: 3)
        #expect(sequences == [1, 2, 3], "\(status)")
        #expect(status["connected"] as? Bool == true && status["acknowledged"] as? Int == 3, "\(status)")

        // The same credentials in the URL, percent-escaped, win over none in the config.
        var inURL = config(server)
        inURL.servers = ["nats://\(Self.user):p4ss%3Aw0rd%40x@127.0.0.1:\(server.port)"]
        inURL.durable = "creds-url"
        #expect(try consume(inURL, count: 3).sequences == [1, 2, 3])
    }

    @Test func aTokenFromTheConfigOrTheURLIsAccepted() throws {
        let root = try Fixtures.temporaryDirectory("nats-token").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let server = try NATSServerProcess(root: root, arguments: ["--auth", Self.token])
        try fill(server, NATSCredentials(token: Self.token), count: 2)

        let (sequences, status) = try consume(config(server, token: Self.token), count: 2)
        #expect(sequences == [1, 2], "\(status)")
        #expect(status["connected"] as? Bool == true, "\(status)")
        var inURL = config(server)
        inURL.servers = ["nats://\(Self.token)@127.0.0.1:\(server.port)"]
        inURL.durable = "creds-url"
        #expect(try consume(inURL, count: 2).sequences == [1, 2])

        // A wrong token, or none, is refused by name.
        for wrong in [NATSCredentials(token: "not-the-token"), NATSCredentials(), NATSCredentials(user: Self.user, password: Self.token)] {
            let e = refusal(server, wrong)
            #expect(e?.isAuthorizationFailure == true, "\(wrong): \(String(describing: e))")
            #expect(e?.description.contains("NATS server \(server.address): authorization failed") == true, "\(String(describing: e))")
        }
    }

    @Test func wrongCredentialsNameTheServerAndAreRetriedWithAGrowingPause() throws {
        let root = try Fixtures.temporaryDirectory("nats-wrong").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let server = try NATSServerProcess(root: root, arguments: ["--user", Self.user, "--pass", Self.password])

        for wrong in [NATSCredentials(user: Self.user, password: "wrong"), NATSCredentials(), NATSCredentials(token: Self.password)] {
            let e = refusal(server, wrong)
            #expect(e?.isAuthorizationFailure == true, "\(wrong): \(String(describing: e))")
            #expect(e?.description.contains("NATS server \(server.address): authorization failed") == true, "\(String(describing: e))")
        }

        // `recipe publish` gives up at once: the same credentials stay wrong.
        let publisher = JetStreamPublisher(servers: [server.address], credentials: NATSCredentials(user: Self.user, password: "wrong"),
                                           subject: "facts.in", giveUpSeconds: 600)
        #expect(throws: NATSError.self) { try publisher.connect(giveUpAfter: 600) }

        // The worker's source logs each attempt with the reason and waits longer each time.
        let logPath = root + "/worker.log"
        let s = try JetStreamSource(config: config(server, user: Self.user, password: "wrong"), parser: FactParser(sourceKind: .pipe),
                                    appliedThrough: 0, log: try WorkerLog(level: .error, filePath: logPath))
        defer { s.close() }
        var attempts: [[String: Any]] = []
        for _ in 0..<200 where attempts.count < 3 {
            #expect(s.take() == nil)
            usleep(50_000)
            attempts = logEvents(logPath, "jetstream_unavailable")
        }
        #expect(attempts.count >= 3, "\(attempts)")
        for a in attempts {
            let error = a["error"] as? String ?? ""
            #expect(error.contains("NATS server \(server.address): authorization failed"), "\(a)")
            #expect(a["server"] as? String == server.address.description, "\(a)")
        }
        let pauses = attempts.compactMap { ($0["retry_seconds"] as? NSNumber)?.doubleValue }
        #expect(pauses.count == attempts.count && pauses[1] > pauses[0] && pauses[2] >= pauses[1], "\(pauses)")
        let status = s.status.summary() ?? [:]
        #expect(status["connected"] as? Bool == false, "\(status)")
        #expect((status["last_error"] as? String)?.contains("authorization failed") == true, "\(status)")
    }

    /// A user NKEY (Tests/NATSTests/NKeyTests.swift checks its encoding against Python's):
    /// the server knows only the public key, the client signs the server's nonce with the
    /// seed read from a file.
    @Test func anNKeyUserSignsTheServersNonce() throws {
        let root = try Fixtures.temporaryDirectory("nats-nkey").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let seed = "SUALQ2KYDNVAUYYU5AMTUCQK7AVKLYFEZFQVBDV5IP6RMLIXN2NADEIDIY"
        let publicKey = "UCYISJHXISR2SX3VRU6DEAWCIANPOTTKXOSWBT5I66VOB3PFRABTTRVP"
        try "authorization { users = [ { nkey: \(publicKey) } ] }\n".write(toFile: root + "/nats.conf", atomically: true, encoding: .utf8)
        let seedFile = root + "/user.nk"
        try (seed + "\n").write(toFile: seedFile, atomically: true, encoding: .utf8)
        let server = try NATSServerProcess(root: root, arguments: ["-c", root + "/nats.conf"])

        let credentials = try NATSCredentials.nkeySeedFile(seedFile)
        try fill(server, credentials, count: 2)
        var c = config(server)
        c.nkeySeedFile = seedFile
        let (sequences, status) = try consume(c, count: 2)
        #expect(sequences == [1, 2], "\(status)")

        // Another user's key (a valid seed the server does not know), or none, is refused.
        for wrong in [NATSCredentials(nkeySeed: "SUAJ2YNRTXX72WTAXKCEV5ES5QWMIRCJYVUXWMTJDFYDXLADDSXH6YALCA"), NATSCredentials()] {
            let e = refusal(server, wrong)
            #expect(e?.isAuthorizationFailure == true, "\(String(describing: e))")
        }
        // A missing or unusable seed file is named, the seed never repeated.
        #expect(throws: NATSError.badCredentials("cannot read the nkey seed file \(root)/missing.nk")) {
            _ = try NATSCredentials.nkeySeedFile(root + "/missing.nk")
        }
        try (String(seed.dropLast()) + "A\n").write(toFile: seedFile, atomically: true, encoding: .utf8)
        do {
            _ = try NATSCredentials.nkeySeedFile(seedFile)
            Issue.record("a seed with a wrong checksum was accepted")
        } catch {
            #expect("\(error)".contains("checksum") && !"\(error)".contains(seed.prefix(20)), "\(error)")
        }
    }

    @Test(.enabled(if: WorkerProcess.available, "needs the recipe binary and the models (Pipelines/fetch-models.sh)"))
    func aWorkerWithWrongCredentialsKeepsAnsweringItsSocket() throws {
        let root = try Fixtures.temporaryDirectory("nats-worker").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let server = try NATSServerProcess(root: root, arguments: ["--user", Self.user, "--pass", Self.password])
        let w = try WorkerProcess(tag: "creds-worker", extra: [
            "pipes": [] as [String],
            "jetstream": ["servers": [server.url], "stream": "facts", "subject": "facts.in", "durable": "w",
                          "user": Self.user, "password": "wrong", "reconnectMaxSeconds": 0.5] as [String: Any],
            "promptStates": ["capacity": 0] as [String: Any],
        ])
        defer { _ = try? w.stop(); w.remove() }
        try w.start()
        var unavailable: [[String: Any]] = []
        for _ in 0..<200 where unavailable.count < 2 { unavailable = w.logEvents("jetstream_unavailable"); usleep(100_000) }
        #expect(unavailable.count >= 2, "a retried, logged connection: \(w.logTail())")
        #expect((unavailable.first?["error"] as? String)?.contains("NATS server \(server.address): authorization failed") == true,
                "\(unavailable.first ?? [:])")
        // Meanwhile the socket answers and takes facts from its other sources.
        #expect(try w.request(["op": "health"]).ok)
        #expect(try w.request(["op": "add", "facts": [["statement": "The worker without its stream still learns this"]]]).ok)
        #expect(try w.liveFacts() == 1)
        let js = try w.request(["op": "stats"])["jetstream"] as? [String: Any] ?? [:]
        #expect(js["connected"] as? Bool == false && (js["last_error"] as? String)?.contains("authorization failed") == true, "\(js)")
        #expect(try w.stop() == 0)
    }

    @Test func aServerThatRequiresTLSIsRefusedBeforeAnythingIsSent() throws {
        // A listener that speaks like a TLS-only server: INFO with tls_required, then it
        // records whatever the client sends before closing.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, len) == 0 && getsockname(listener, $0, &len) == 0 }
        }
        try #require(bound && listen(listener, 1) == 0)
        let port = Int(UInt16(bigEndian: a.sin_port))
        let received = ReceivedBytes()
        let served = DispatchSemaphore(value: 0)
        Thread {
            let fd = accept(listener, nil, nil)
            if fd >= 0 {
                let info = Array("INFO {\"server_id\":\"fake\",\"tls_required\":true,\"max_payload\":1048576}\r\n".utf8)
                _ = info.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
                var buf = [UInt8](repeating: 0, count: 4096)
                while true {
                    let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                    if n <= 0 { break }
                    received.append(buf[0..<n])
                }
                close(fd)
            }
            served.signal()
        }.start()
        let address = NATSServerAddress(host: "127.0.0.1", port: port)
        #expect(throws: NATSError.tlsRequired(server: address.description)) {
            _ = try NATSConnection(server: address, credentials: NATSCredentials(user: "u", password: "secret"))
        }
        #expect(served.wait(timeout: .now() + 30) == .success)
        #expect(received.bytes.isEmpty, "sent in plain text: \(String(decoding: received.bytes, as: UTF8.self))")
        #expect(NATSError.tlsRequired(server: address.description).description.contains("requires TLS"))
    }

    func logEvents(_ path: String, _ name: String) -> [[String: Any]] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
            .filter { $0["event"] as? String == name }
    }
}

final class ReceivedBytes: @unchecked Sendable {
    private let lock = NSLock()
    private var _bytes: [UInt8] = []
    var bytes: [UInt8] { lock.withLock { _bytes } }
    func append(_ b: ArraySlice<UInt8>) { lock.withLock { _bytes += b } }
}
