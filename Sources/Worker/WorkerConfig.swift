// The worker's configuration (`Config/worker.json`). Every field has a default here, in
// one place; a file may set any subset. Unknown keys are rejected (a typo must not be
// silently ignored), and values are validated at load with errors naming the key.
import Foundation
import Recipe

public struct WorkerConfig: Codable, Sendable, Equatable {
    /// Directory of the knowledge repository (fact log, matrices, manifest, inbox areas).
    public var repository: String = "/var/lib/recipe"
    /// Models directory (`--models`, `RECIPE_MODELS` and the fetch script's default otherwise).
    public var models: String? = nil
    /// Editor checkpoint; nil means the checkpoint shipped with the build for the default models.
    public var checkpoint: String? = nil
    /// The subject rule's weight for this worker (`SubjectRule`); nil means the editor's own,
    /// 0 turns the rule off (the paper's dense-only retrieval). Reloaded with SIGHUP.
    public var subjectWeight: Float? = nil
    /// Whether a question of several sentences is also searched with its last sentence
    /// (`QuestionView`); false searches with the whole question only, as the paper does.
    /// Reloaded with SIGHUP.
    public var questionView: Bool = true
    /// Refinement of each new fact's continuous prompt on its own question and target
    /// (facts that name both; `PromptRefiner`): at most `steps` Adam steps through the LLM,
    /// about a second per such fact on 2 cores; `steps` 0 keeps the prompt transformer's
    /// prompt alone, as the paper; `statements` also refines bare statements (off: a feed
    /// of statements would ingest at ~1 fact per second). A change re-encodes every fact (a
    /// restart on SIGHUP).
    public var refinement = PromptRefiner.Options.standard

    /// Inbox directories watched for fact files (`*.jsonl`, `*.json`, `*.txt`).
    /// Relative paths are taken from `repository`.
    public var inboxes: [String] = ["inbox"]
    /// Named pipes read line by line (created if missing, reopened when a writer closes).
    public var pipes: [String] = []
    /// Also read facts from standard input (one per line) until EOF.
    public var stdin: Bool = false
    /// Directory where the rejected lines of the pipes and of standard input are kept,
    /// relative to `repository` (created if missing): `<pipe name>.rejections` per pipe and
    /// `stdin.rejections`, each "pipe:line: reason" followed by the line itself after a tab,
    /// fsynced at every time step, rotated at 16 MiB keeping 3 older files (`.1` newest).
    /// Inbox files keep theirs in each inbox's `.rejected` area instead.
    public var pipeRejections: String = "rejected"
    /// Poll inboxes every this many milliseconds when inotify is unavailable.
    public var pollIntervalMilliseconds: Int = 1000

    /// A NATS JetStream stream to consume (off while `servers` is empty; `JetStreamSource`).
    public var jetstream = JetStream()

    public var socket = Socket()
    public var limits = Limits()
    public var promptStates = PromptStates()
    public var timeStep = TimeStep()
    public var logging = Logging()
    /// Seconds that SIGTERM/SIGINT may take to finish the current step and exit.
    /// Answers with a continuous prompt are handed to the unedited model once the prompt has
    /// stated the fact (`AnswerGenerator`: at the first repeated word or the end of the first
    /// sentence), so they go on as the model writes instead of looping; an ask's `hand_off`
    /// overrides it.
    public var handOff: Bool = true
    public var shutdownTimeoutSeconds: Double = 10

    /// The stream this worker consumes through a durable pull consumer of its own: each
    /// message is one fact line (the formats of pipes), acknowledged only once the time
    /// step holding it is durable. Read at start; a change restarts on SIGHUP.
    public struct JetStream: Codable, Sendable, Equatable {
        /// Servers of the cluster, "nats://host:port" (credentials may be given in the URL
        /// as "nats://user:password@host:port" or "nats://token@host:port"); empty: no stream.
        public var servers: [String] = []
        /// The stream's name (it must exist: `recipe publish --create-stream` makes one).
        public var stream: String = "facts"
        /// Only messages on this subject (wildcards allowed); nil: every subject of the stream.
        public var subject: String? = nil
        /// This worker's durable consumer: one name per worker (two workers sharing a name
        /// would split the stream between them instead of each holding all of it).
        public var durable: String = "recipe"
        /// Credentials as the NATS server's authorization block expects: user and password...
        public var user: String? = nil
        public var password: String? = nil
        /// ...or a token...
        public var token: String? = nil
        /// ...or a user NKEY: the path of a file holding its seed ("SU…", as `nk -gen user`
        /// writes it); read at every connection attempt, never logged.
        public var nkeySeedFile: String? = nil
        /// Messages asked for per pull request.
        public var batch: Int = 256
        /// How long a pull request waits on the server for messages.
        public var expiresMilliseconds: Int = 2000
        /// Redelivery of what is not acknowledged within this long (a step longer than this
        /// costs redeliveries, which are recognised and not stored again).
        public var ackWaitSeconds: Double = 30
        /// Longest pause between reconnection attempts (the pause doubles from 0.1 s).
        public var reconnectMaxSeconds: Double = 5
        public init() {}
    }

    public struct Socket: Codable, Sendable, Equatable {
        /// Path of the Unix stream socket.
        public var path: String = "/run/recipe/recipe.sock"
        /// File mode of the socket, octal string (owner-only by default).
        public var mode: String = "0600"
        /// Group owning the socket (name or number); nil keeps the process group.
        public var group: String? = nil
        /// If non-empty, only peers with these uids (SO_PEERCRED, read at connect) are served.
        /// Reloaded with SIGHUP: open connections of a uid no longer listed are told
        /// `forbidden` and closed, even in the middle of a request.
        public var allowedUIDs: [UInt32] = []
        public init() {}
    }

    public struct Limits: Codable, Sendable, Equatable {
        /// Largest request line in bytes; longer lines get an error and are skipped.
        public var maxRequestBytes: Int = 1 << 20
        /// A connection idle this long is closed.
        public var idleTimeoutSeconds: Double = 300
        /// Open connections. A new client beyond it takes the place of the connection idle
        /// longest (told `shed`, then closed); it is refused with `busy` only when every open
        /// connection is inside a request.
        public var maxClients: Int = 64
        /// Upper bound of `max_tokens` in `ask`.
        public var maxGenerationTokens: Int = 256
        /// `max_tokens` when a request gives none.
        public var defaultGenerationTokens: Int = 32
        /// Most tokens (the LLM's) of an `ask`'s question; a longer one is refused with
        /// `too_large` and the counts. The prefill's time and memory grow with the question
        /// (attention with its square: one question of ~8,100 tokens held the LLM, which every
        /// ask waits for, for 101 s and took 3.4 GB), while a typical question has 10-30.
        public var maxQuestionTokens: Int = 512
        /// Largest fact statement in bytes (longer ones are rejected with a reason).
        public var maxFactBytes: Int = 4096
        /// Answers generated together (continuous batching: one decode pass over the weights
        /// per token for all of them); further asks wait and join as others finish. Each
        /// running answer holds its KV cache (46 KB per position for SmolLM2, so 32 answers of
        /// 100 positions take 150 MB). Read at start.
        public var maxBatch: Int = 32
        /// Continuous prompts whose keys and values `ask` keeps (138 KiB each for SmolLM2, so
        /// at most 10,000 ≈ 1.4 GB), least recently used evicted first; 0 computes every
        /// prompt's rows again. Read at start.
        public var promptCacheEntries: Int = 256
        public init() {}
    }

    /// The keys and values of continuous prompts kept on disk (`PromptStateStore`), so that
    /// even a first question about a fact skips its prompt's rows of the prefill (~3.5 ms of
    /// a cold 8-token ask on 2 cores). Read at start; a change restarts on SIGHUP.
    public struct PromptStates: Codable, Sendable, Equatable {
        /// Facts whose prompt states are kept, newest first (145 KiB of disk each for
        /// SmolLM2-135M, so 4096 ≈ 580 MB, a sparse file filled as facts come); 0 keeps none.
        public var capacity: Int = 4096
        /// Largest size of the file's slots in MiB (fewer slots than `capacity` when they
        /// do not fit): the cache never grows past it.
        public var maxMegabytes: Int = 1024
        /// A state is not written while the file system has less than this many MiB free:
        /// the cache never takes the room the fact log needs (the log is the record; a
        /// state not kept only costs its recomputation at the next ask).
        public var keepFreeMegabytes: Int = 512
        /// The file, relative to `repository` when not absolute (a cache: deleting it only
        /// costs recomputation).
        public var file: String = "prompt-states"
        /// Compute them for each fact as it is committed (~7 ms of prefill per fact, in the
        /// background, `PromptWarmer`); false: only at a fact's first ask.
        public var atIngestion: Bool = true
        public init() {}
    }

    public struct TimeStep: Codable, Sendable, Equatable {
        /// A step is committed when this many facts are pending...
        public var maxFacts: Int = 256
        /// ...or when the oldest pending fact has waited this long...
        public var maxDelayMilliseconds: Int = 200
        /// ...and every inbox file is committed as its own step (so it can be moved aside).
        public var stepPerFile: Bool = true
        public init() {}
    }

    public struct Logging: Codable, Sendable, Equatable {
        /// `debug`, `info`, `warning` or `error`.
        public var level: String = "info"
        /// Also append JSON log lines to this file (stderr always gets them).
        public var file: String? = nil
        /// Write Prometheus metrics to this file (textfile collector) after every step.
        public var metricsFile: String? = nil
        public init() {}
    }

    public init() {}
}

public enum WorkerConfigError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case invalid(path: String, key: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "\(path): \(reason)"
        case let .invalid(path, key, reason): return "\(path): '\(key)' \(reason)"
        }
    }
}

extension WorkerConfig {
    /// Loads and validates a config file; absent fields keep their defaults.
    public static func load(_ path: String) throws -> WorkerConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw WorkerConfigError.unreadable(path: path, reason: "cannot read the file")
        }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw WorkerConfigError.unreadable(path: path, reason: "not valid JSON (\(error.localizedDescription))")
        }
        guard let dict = object as? [String: Any] else {
            throw WorkerConfigError.unreadable(path: path, reason: "expected a JSON object")
        }
        // Defaults live only in the struct: encode them, lay the file's values over them,
        // then decode the result. Unknown keys are found on the way.
        let defaults = (try JSONSerialization.jsonObject(with: JSONEncoder().encode(WorkerConfig()))) as? [String: Any] ?? [:]
        let merged = try overlay(dict, on: defaults, prefix: "", path: path)
        let config: WorkerConfig
        do {
            config = try JSONDecoder().decode(WorkerConfig.self, from: JSONSerialization.data(withJSONObject: merged))
        } catch let DecodingError.typeMismatch(_, ctx), let DecodingError.valueNotFound(_, ctx) {
            throw WorkerConfigError.invalid(path: path, key: ctx.codingPath.map(\.stringValue).joined(separator: "."),
                                            reason: "has the wrong type")
        } catch let DecodingError.dataCorrupted(ctx) {
            throw WorkerConfigError.invalid(path: path, key: ctx.codingPath.map(\.stringValue).joined(separator: "."),
                                            reason: "has an invalid value")
        } catch {
            throw WorkerConfigError.unreadable(path: path, reason: "\(error)")
        }
        try config.validate(path: path)
        return config
    }

    /// Optional settings: absent from the encoded defaults, but valid keys.
    static let optionalKeys: Set<String> = ["models", "checkpoint", "subjectWeight", "socket.group", "logging.file", "logging.metricsFile",
                                            "jetstream.subject", "jetstream.user", "jetstream.password", "jetstream.token",
                                            "jetstream.nkeySeedFile"]

    /// `values` laid over `defaults`, recursively; a key unknown to the defaults is an error.
    static func overlay(_ values: [String: Any], on defaults: [String: Any], prefix: String, path: String) throws -> [String: Any] {
        var out = defaults
        for (key, value) in values {
            let name = prefix + key
            if let sub = defaults[key] as? [String: Any] {
                guard let nested = value as? [String: Any] else {
                    throw WorkerConfigError.invalid(path: path, key: name, reason: "must be an object")
                }
                out[key] = try overlay(nested, on: sub, prefix: name + ".", path: path)
            } else if defaults[key] != nil || optionalKeys.contains(name) {
                out[key] = value
            } else {
                throw WorkerConfigError.invalid(path: path, key: name, reason: "is not a known setting")
            }
        }
        return out
    }

    /// Checks ranges; `path` only names the file in errors.
    public func validate(path: String = "config") throws {
        func fail(_ key: String, _ reason: String) -> WorkerConfigError { .invalid(path: path, key: key, reason: reason) }
        if repository.isEmpty { throw fail("repository", "must not be empty") }
        if socket.path.isEmpty { throw fail("socket.path", "must not be empty") }
        if socket.path.utf8.count >= 108 { throw fail("socket.path", "is longer than a Unix socket path may be (107 bytes)") }
        guard let mode = UInt32(socket.mode, radix: 8), mode <= 0o777 else { throw fail("socket.mode", "must be an octal mode like \"0600\"") }
        _ = mode
        if limits.maxRequestBytes < 1024 { throw fail("limits.maxRequestBytes", "must be at least 1024") }
        if limits.idleTimeoutSeconds <= 0 { throw fail("limits.idleTimeoutSeconds", "must be positive") }
        if limits.maxClients < 1 { throw fail("limits.maxClients", "must be at least 1") }
        if limits.maxGenerationTokens < 1 { throw fail("limits.maxGenerationTokens", "must be at least 1") }
        if !(1...limits.maxGenerationTokens).contains(limits.defaultGenerationTokens) {
            throw fail("limits.defaultGenerationTokens", "must be between 1 and limits.maxGenerationTokens")
        }
        if !(1...32768).contains(limits.maxQuestionTokens) { throw fail("limits.maxQuestionTokens", "must be between 1 and 32768") }
        if !(1...256).contains(limits.maxBatch) { throw fail("limits.maxBatch", "must be between 1 and 256") }
        if limits.maxFactBytes < 16 { throw fail("limits.maxFactBytes", "must be at least 16") }
        if !(0...10_000).contains(limits.promptCacheEntries) { throw fail("limits.promptCacheEntries", "must be between 0 and 10000") }
        if !(0...1_000_000).contains(promptStates.capacity) { throw fail("promptStates.capacity", "must be between 0 and 1000000 (145 GB for SmolLM2)") }
        if promptStates.file.isEmpty { throw fail("promptStates.file", "must not be empty") }
        if promptStates.maxMegabytes < 1 { throw fail("promptStates.maxMegabytes", "must be at least 1") }
        if promptStates.keepFreeMegabytes < 0 { throw fail("promptStates.keepFreeMegabytes", "must not be negative") }
        if pipeRejections.isEmpty { throw fail("pipeRejections", "must not be empty") }
        if timeStep.maxFacts < 1 { throw fail("timeStep.maxFacts", "must be at least 1") }
        if timeStep.maxDelayMilliseconds < 0 { throw fail("timeStep.maxDelayMilliseconds", "must not be negative") }
        if pollIntervalMilliseconds < 10 { throw fail("pollIntervalMilliseconds", "must be at least 10") }
        if !["debug", "info", "warning", "error"].contains(logging.level) {
            throw fail("logging.level", "must be one of debug, info, warning, error")
        }
        if shutdownTimeoutSeconds <= 0 { throw fail("shutdownTimeoutSeconds", "must be positive") }
        if let w = subjectWeight, !(w >= 0 && w.isFinite) { throw fail("subjectWeight", "must be a number ≥ 0") }
        if let p = refinement.problem { throw fail("refinement", p) }
        if let p = jetstream.problem { throw fail("jetstream." + p.key, p.reason) }
    }

    /// `p` resolved against the repository directory when relative.
    public func resolve(_ p: String) -> String {
        p.hasPrefix("/") ? p : (repository as NSString).appendingPathComponent(p)
    }
}
