// `recipe publish`: fact lines from stdin to a JetStream stream, for operators feeding a
// fleet (`… | recipe publish --servers … --subject facts.in`). Each line is one message
// with a `Nats-Msg-Id`, acknowledged by the stream before the command exits 0.
import Foundation
import Glibc
import NATS
import Posix

enum PublishCommand: Subcommand {
    static let name = "publish"
    static let summary = "send fact lines from stdin to a NATS JetStream stream (feeds a fleet)"
    static let help = """
    usage: … | recipe publish --servers URL[,URL…] --subject SUBJECT [options]

    Reads fact lines from standard input (the formats of the worker's pipes: a statement,
    or a JSON fact such as {"prompt": …, "target": …, "subject": …}; blank lines are
    skipped) and publishes each as one message on SUBJECT, waiting for the stream to
    store it. Workers whose config names the stream (the "jetstream" section of
    Config/worker.json) consume it, each through its own durable consumer.

    Each message carries the deduplication header Nats-Msg-Id "<id prefix>-<line number>".
    When a server dies, unacknowledged messages are sent again through another server of
    the list with the same ids, and the stream stores each once. With a fixed --id-prefix,
    running the same input again within the stream's duplicate window (2 minutes for
    streams made by --create-stream) stores nothing twice either.

      --servers URLS        comma-separated nats://host:port of the cluster (credentials
                            may be in the URL: nats://user:password@host:port, nats://token@host)
      --subject SUBJECT     subject to publish on (the stream must capture it)
      --user USER, --password PASSWORD, --token TOKEN
                            credentials of the server's authorization block ($NATS_PASSWORD
                            and $NATS_TOKEN are read when the options are absent)
      --nkey-seed-file FILE a user NKEY instead: the file holding its seed (SU…, as
                            `nk -gen user` writes it); the server's nonce is signed with it
      --id-prefix PREFIX    deduplication ids are PREFIX-<line number> (default: host, pid
                            and start time, unique to this run)
      --create-stream NAME  create the stream first when it does not exist, capturing
                            --stream-subjects (default: SUBJECT) with --replicas copies
      --stream-subjects S   comma-separated subjects of a created stream
      --replicas N          copies of a created stream (default 3: one per node of a
                            three-node cluster; 1 for a single server)
      --window N            messages in flight before waiting for acknowledgements (512)

    Exit codes: 0 every line stored, 1 the stream refused a message, 2 usage, 69 no server
    of the list reachable. A summary goes to stderr.
    """
    static let valued: Set<String> = ["servers", "subject", "user", "password", "token", "id-prefix", "create-stream", "nkey-seed-file",
                                      "stream-subjects", "replicas", "window"]

    static func run(_ args: inout Arguments) throws -> ExitCode {
        guard let serverList = args.string("servers") else { throw UsageError("--servers is required") }
        guard let subject = args.string("subject") else { throw UsageError("--subject is required") }
        let env = ProcessInfo.processInfo.environment
        var credentials = NATSCredentials(user: args.string("user"), password: args.string("password") ?? env["NATS_PASSWORD"],
                                          token: args.string("token") ?? env["NATS_TOKEN"])
        if let file = args.string("nkey-seed-file") {
            do { credentials = try NATSCredentials.nkeySeedFile(file) } catch { throw UsageError("--nkey-seed-file: \(error)") }
        }
        let prefix = args.string("id-prefix") ?? defaultPrefix()
        let create = args.string("create-stream")
        let streamSubjects = args.string("stream-subjects").map { $0.split(separator: ",").map(String.init) } ?? [subject]
        let replicas = try args.int("replicas", default: 3)
        let window = try args.int("window", default: 512)
        try args.rejectUnknown()
        guard (1...5).contains(replicas) else { throw UsageError("--replicas must be between 1 and 5") }
        guard window >= 1 else { throw UsageError("--window must be at least 1") }
        let servers: [NATSServerAddress]
        do { servers = try serverList.split(separator: ",").map { try NATSServerAddress(parsing: String($0)) } } catch {
            throw UsageError("\(error)")
        }
        guard !servers.isEmpty else { throw UsageError("--servers names no server") }

        let publisher = JetStreamPublisher(servers: servers, credentials: credentials, subject: subject, window: window)
        publisher.onReconnect = { Console.err("recipe publish: \($0); resending unacknowledged messages through another server\n") }
        do {
            try publisher.connect()
            if let stream = create {
                let conn = try NATSConnection(server: servers[0], credentials: credentials, name: "recipe publish")
                let js = try JetStreamClient(connection: conn)
                let made = try js.createStream(stream, subjects: streamSubjects, replicas: replicas)
                Console.err("recipe publish: stream \(stream) \(made ? "created with \(replicas) replicas" : "exists")\n")
                conn.close()
            }
        } catch let e as NATSError {
            Console.err("recipe publish: \(e)\n")
            switch e { case .unreachable, .closed, .timedOut: return .unavailable; default: return .failure }
        }
        var lineNumber = 0
        do {
            while true {
                // Input that pauses (`tail -f`) must not leave lines unsent meanwhile.
                if (try? Poll.wait([(0, Poll.readable)], timeoutMilliseconds: 0))?.first == 0 { try publisher.flush() }
                guard let line = readLine(strippingNewline: true) else { break }
                lineNumber += 1
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.isEmpty { continue }
                try publisher.publish(Array(line.utf8), id: "\(prefix)-\(lineNumber)")
            }
            let r = try publisher.finish()
            let range = r.firstSequence.map { f in " (sequences \(f)–\(r.lastSequence ?? f))" } ?? ""
            Console.err("recipe publish: \(r.published) messages stored in stream \(r.stream.isEmpty ? "?" : r.stream)\(range), "
                        + "\(r.duplicates) duplicates dropped, \(r.reconnects) reconnections\n")
            publisher.close()
            return .ok
        } catch {
            Console.err("recipe publish: stopped at line \(lineNumber): \(error)\n")
            return .failure
        }
    }

    static func defaultPrefix() -> String {
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        let ms = Int(Date().timeIntervalSince1970 * 1000)
        let name = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return "\(name)-\(getpid())-\(ms)"
    }
}
