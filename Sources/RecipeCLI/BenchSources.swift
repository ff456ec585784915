// `recipe bench ingest --source pipe,jetstream`: facts per second from each kind of source
// into a fresh repository, through the worker's own ingest path: the sources `recipe serve`
// builds from its config (`WorkerService.sources`, `WorkerService.jetStreamSource`), its
// time-step policy (`WorkerService.policy`) and its `TimeStepCommitter`, one step after
// another as its ingest thread runs them. The clock runs from the first byte written to the
// named pipe, or from the connection to a stream that already holds every line (filled
// beforehand by the publisher of `recipe publish`), to the return of the step that made
// the last fact durable (for the stream: its acknowledgements sent). The sources take
// turns round by round, the first of a round alternating, so that a changing load weighs
// on all of them alike; each run has a fresh repository (and a fresh stream).
// Check first: every run stores all N lines, with the same content (fingerprint) as the
// first run.
import Foundation
import Glibc
import NATS
import Posix
import Storage
import Worker

enum BenchSources {
    static let valued: Set<String> = ["source", "servers", "lines"]
    static let help = """
          --source LIST        pipe, jetstream or both (pipe,jetstream): instead of the inbox
                               file, time N lines from these sources into fresh repositories
                               through the worker's sources, time-step policy and committer, the
                               sources taking turns for --repeats rounds; reports each median
                               and their ratio to the first source's
          --servers URLS       a NATS server with JetStream (nats://host:port) for jetstream:
                               each run fills a stream of its own first, deleted afterwards
          --lines FILE         fact lines to send (the pipe formats; the first N non-blank
                               ones; default: generated statements)
        """

    struct Run: Codable {
        var source: String
        var round: Int
        var seconds: Double
        var factsPerSecond: Double
        var timeSteps: Int
    }

    struct Report: Codable {
        var encoder: String
        var facts: Int
        var rounds: Int
        var runs: [Run]
        /// Source -> median facts per second.
        var medians: [String: Double]
        /// Each source's median over the first source's.
        var ratios: [String: Double]
        var loadBefore: String
        var loadAfter: String
    }

    static func run(sources: [String], servers serverList: String?, linesFile: String?, facts N: Int, repeats: Int,
                    scratch: String, loaded: IngestEncoder.Loaded, json: Bool) throws -> ExitCode {
        guard !sources.isEmpty, sources.allSatisfy({ $0 == "pipe" || $0 == "jetstream" }), Set(sources).count == sources.count else {
            throw UsageError("--source expects pipe, jetstream or pipe,jetstream")
        }
        var servers: [String] = []
        if sources.contains("jetstream") {
            guard let serverList else { throw UsageError("--source jetstream needs --servers nats://host:port (a server with JetStream, -js)") }
            servers = serverList.split(separator: ",").map(String.init)
            do { _ = try servers.map { try NATSServerAddress(parsing: $0) } } catch { throw UsageError("--servers: \(error)") }
            guard !servers.isEmpty else { throw UsageError("--servers names no server") }
        }
        let lines = try factLines(linesFile, count: N)
        func say(_ s: String) { if !json { print(s) } }
        let loadBefore = BenchIngest.loadAverage()
        say("ingest from sources: \(loaded.description); \(N) lines\(linesFile.map { " of " + $0 } ?? ""); "
            + "\(repeats) rounds of \(sources.joined(separator: ", ")) taking turns; load \(loadBefore)")
        _ = try loaded.encoder.encode(Array(lines.prefix(64)))  // warm-up (first-call allocations)

        var runs: [Run] = []
        var reference: UInt32?
        for round in 1...repeats {
            let order = round % 2 == 1 ? sources : sources.reversed()
            for source in order {
                let root = scratch + "/recipe-bench-sources-\(getpid())-\(round)-\(source)"
                defer { IngestVerify.removeTree(root) }
                try FileSystem.makeDirectory(root)
                let r = source == "pipe"
                    ? try viaPipe(lines, root: root, encoder: loaded.encoder)
                    : try viaStream(lines, root: root, encoder: loaded.encoder, servers: servers, round: round)
                // Check: every line stored, the same facts in the same order as the first run.
                guard r.stored == N else {
                    IngestOutput.note("recipe bench ingest: \(source) stored \(r.stored) of \(N) lines (duplicate or rejected lines?); not timing")
                    return .failure
                }
                if let reference, reference != r.fingerprint {
                    IngestOutput.note("recipe bench ingest: \(source)'s repository differs from the first run's (content fingerprint)")
                    return .failure
                }
                reference = r.fingerprint
                let run = Run(source: source, round: round, seconds: r.seconds, factsPerSecond: Double(N) / r.seconds, timeSteps: r.timeSteps)
                runs.append(run)
                say(String(format: "  round %d, %@: %.2f s, %.1f facts/s, %d time steps", round, source, run.seconds,
                           run.factsPerSecond, run.timeSteps))
            }
        }
        var medians: [String: Double] = [:], ratios: [String: Double] = [:]
        for s in sources { medians[s] = BenchRetrieval.percentile(runs.filter { $0.source == s }.map(\.factsPerSecond), 0.5) }
        for s in sources { ratios[s] = medians[s]! / medians[sources[0]]! }
        for s in sources {
            let xs = runs.filter { $0.source == s }.map(\.factsPerSecond)
            say(String(format: "  %@: median %.1f facts/s (min %.1f, max %.1f), %.2f of %@'s median", s, medians[s]!, xs.min()!,
                       xs.max()!, ratios[s]!, sources[0]))
        }
        let report = Report(encoder: loaded.description, facts: N, rounds: repeats, runs: runs, medians: medians, ratios: ratios,
                            loadBefore: loadBefore, loadAfter: BenchIngest.loadAverage())
        say("  load after \(report.loadAfter)")
        if json {
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys]
            print(String(decoding: try e.encode(report), as: UTF8.self))
        }
        return .ok
    }

    /// The first `count` non-blank lines of `path`, or generated statements.
    static func factLines(_ path: String?, count: Int) throws -> [String] {
        guard let path else {
            return (0..<count).map { "The capital of the benchmark country number \($0) is the city called Bench\($0 * 7919 % 100_003)" }
        }
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch { throw UsageError("--lines \(path): \(error)") }
        let lines = text.split(whereSeparator: \.isNewline).map(String.init).filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        guard lines.count >= count else { throw UsageError("--lines \(path) holds \(lines.count) lines, --facts asks for \(count)") }
        return Array(lines.prefix(count))
    }

    struct Outcome {
        var seconds: Double
        var stored: Int
        var timeSteps: Int
        var fingerprint: UInt32
    }

    /// The worker's config for a run in `root` (its defaults otherwise).
    static func config(_ root: String) -> WorkerConfig {
        var c = WorkerConfig()
        c.repository = root + "/repo"
        c.inboxes = []
        c.pipes = []
        return c
    }

    /// A writer thread fills the FIFO (blocking while the pipe is full, as a feed does).
    static func viaPipe(_ lines: [String], root: String, encoder: any FactEncoder) throws -> Outcome {
        var c = config(root)
        c.pipes = ["feed.pipe"]
        let repo = try Repository(path: c.repository, encoder: encoder)
        defer { try? repo.close() }
        let committer = TimeStepCommitter(sources: try WorkerService.sources(c), repository: repo, policy: WorkerService.policy(c))
        let bytes = Array(lines.map { $0 + "\n" }.joined().utf8)
        let path = c.resolve("feed.pipe")
        let written = DispatchSemaphore(value: 0)
        let writeError = ErrorBox()
        let t0 = BenchRetrieval.now()
        Thread {
            do {
                let fd = try FileDescriptor.open(path, O_WRONLY)
                try fd.writeAll(bytes)
                try fd.close()
            } catch { writeError.error = error }
            written.signal()
        }.start()
        let r = try ingest(committer, lines: lines.count, stalled: { writeError.error })
        let seconds = BenchRetrieval.now() - t0
        written.wait()
        return Outcome(seconds: seconds, stored: r.stored, timeSteps: r.timeSteps, fingerprint: repo.contentFingerprint)
    }

    /// A stream of its own, filled first (every message stored), then consumed.
    /// Credentials, if any, are those of the server URLs (nats://user:password@host).
    static func viaStream(_ lines: [String], root: String, encoder: any FactEncoder, servers urls: [String],
                          round: Int) throws -> Outcome {
        let servers = try urls.map { try NATSServerAddress(parsing: $0) }
        let stream = "recipe-bench-\(getpid())-\(round)", subject = "recipe-bench.\(getpid()).\(round)"
        let admin = try JetStreamClient(connection: try NATSConnection(server: servers[0], name: "recipe bench"))
        defer { try? admin.deleteStream(stream); admin.connection.close() }
        try admin.deleteStream(stream)
        try admin.createStream(stream, subjects: [subject], replicas: 1)
        let publisher = JetStreamPublisher(servers: servers, credentials: NATSCredentials(), subject: subject)
        for (i, line) in lines.enumerated() { try publisher.publish(Array(line.utf8), id: "bench-\(i + 1)") }
        let published = try publisher.finish()
        publisher.close()
        guard published.published == lines.count else {
            throw UsageError("the stream stored \(published.published) of \(lines.count) messages (\(published.duplicates) duplicates)")
        }

        var c = config(root)
        c.jetstream.servers = urls
        c.jetstream.stream = stream
        c.jetstream.subject = subject
        c.jetstream.durable = "bench"
        let repo = try Repository(path: c.repository, encoder: encoder)
        defer { try? repo.close() }
        let state = WorkerState(config: c, log: try WorkerLog(level: .warning))
        let sources = FactSources()
        let committer = TimeStepCommitter(sources: sources, repository: repo, policy: WorkerService.policy(c))
        let t0 = BenchRetrieval.now()
        sources.jetstream = try WorkerService.jetStreamSource(c, repository: repo, state: state)
        defer { sources.jetstream?.close() }
        let r = try ingest(committer, lines: lines.count, stalled: { nil })
        let seconds = BenchRetrieval.now() - t0
        return Outcome(seconds: seconds, stored: r.stored, timeSteps: r.timeSteps, fingerprint: repo.contentFingerprint)
    }

    /// Steps as the worker's ingest thread takes them until `lines` lines are stored,
    /// duplicates or rejected; fails after a minute without any.
    static func ingest(_ committer: TimeStepCommitter, lines: Int, stalled: () -> Error?) throws -> (stored: Int, timeSteps: Int) {
        var stored = 0, done = 0, steps = 0
        var lastProgress = BenchRetrieval.now()
        while done < lines {
            if let e = stalled() { throw e }
            if let r = try committer.step(timeoutMilliseconds: 200) {
                let counts = r.counts
                stored += counts.stored
                done += counts.stored + counts.duplicates + r.rejections.count
                steps += r.timeSteps.count
                if !r.failures.isEmpty { throw UsageError("source failed: \(r.failures.joined(separator: "; "))") }
                if counts.stored + counts.duplicates + r.rejections.count > 0 { lastProgress = BenchRetrieval.now() }
            }
            if BenchRetrieval.now() - lastProgress > 60 {
                throw UsageError("no line ingested for a minute (\(done) of \(lines) done)")
            }
        }
        return (stored, steps)
    }

    final class ErrorBox: @unchecked Sendable {
        private let lock = NSLock()
        private var _error: Error?
        var error: Error? {
            get { lock.withLock { _error } }
            set { lock.withLock { _error = newValue } }
        }
    }
}
