// The socket clients: `recipe ask`, `add`, `retract`, `stats`, `health`. Each builds one
// request of the protocol's types (`WorkerAPI`), sends it to a running worker and prints
// the reply, human-readable by default or the worker's reply line with --json. Exit codes:
// 0 ok, 1 the worker answered with an error, 2 usage, 69 the socket is not reachable or the
// worker did not answer within --timeout (each command has a default fitting what it waits for).
import Foundation
import Posix
import Worker
import WorkerAPI

enum ClientSupport {
    /// The help of the options every client has; `timeout` is the command's default.
    static func socketHelp(timeout: Double, waits what: String) -> String {
        """
          --socket PATH    the worker's socket (default: the --config file's socket.path,
                           else $RECIPE_SOCKET, else /run/recipe/recipe.sock)
          --config FILE    worker config to take the socket path from
          --timeout SECONDS  give up when the worker has not answered within this long
                           (default \(seconds(timeout)) s: \(what)); then exit 69, as when the
                           socket is not reachable
          --json           print the worker's reply as one JSON line
        """
    }
    static let valued: Set<String> = ["socket", "config", "timeout"]

    /// What every client reads first: `--json`, the socket path and `--timeout` (seconds,
    /// `defaultTimeout` when absent).
    static func options(_ args: inout Arguments, defaultTimeout: Double) throws -> (json: Bool, socket: String, timeout: Double) {
        let json = args.flag("json")
        var timeout = defaultTimeout
        if let t = args.string("timeout") {
            guard let v = Double(t), v.isFinite, v > 0 else { throw UsageError("--timeout expects a positive number of seconds, got '\(t)'") }
            timeout = v
        }
        return (json, try socketPath(&args), timeout)
    }

    static func seconds(_ t: Double) -> String { String(format: "%g", t) }

    static func socketPath(_ args: inout Arguments) throws -> String {
        if let s = args.string("socket") { return s }
        if let c = args.string("config") {
            do { return try WorkerConfig.load(c).socket.path } catch { throw UsageError("\(error)") }
        }
        if let env = ProcessInfo.processInfo.environment["RECIPE_SOCKET"], !env.isEmpty { return env }
        return WorkerConfig().socket.path
    }

    /// Sends `request`; prints and returns the exit code. `human` renders a successful reply.
    static func exchange<R: WorkerRequest>(_ request: R, socket: String, timeout: Double, json: Bool,
                                           human: (R.Reply) -> String) -> ExitCode {
        let reply: Reply<R.Reply>, line: [UInt8]
        do {
            let client = try WorkerClient(path: socket, timeoutSeconds: timeout)
            defer { client.close() }
            (reply, line) = try client.send(request)
        } catch WorkerAPIError.timedOut(_, _, let what) {
            let maybe = R.op == .add || R.op == .retract ? "; the \(R.op.rawValue) may still be carried out" : ""
            Console.note("recipe: the worker at \(socket) did not answer within \(seconds(timeout)) s (waiting for \(what)): "
                         + "it is stopped, hung or overloaded (--timeout sets the wait)\(maybe)")
            return .unavailable
        } catch {
            Console.note("recipe: cannot reach the worker at \(socket): \(error)")
            return .unavailable
        }
        if json {
            Console.out(String(decoding: line, as: UTF8.self) + "\n")
        }
        switch reply.result {
        case .success(let body):
            if !json { print(human(body)) }
            return .ok
        case .failure(let e):
            if !json { Console.note("recipe: worker error \(e.code): \(e.message)") }
            return .failure
        }
    }

    static func number(_ v: Double?, _ format: String = "%.3f") -> String {
        guard let d = v else { return "–" }
        return String(format: format, d)
    }
}

enum AskCommand: Subcommand {
    static let name = "ask"
    static let summary = "ask the running worker a question"
    static let help = """
    usage: recipe ask QUESTION... [--method recipe|recipe+text|none|incontext] [--max-tokens N] [--chat] [--stop S ...]
                      [--no-hand-off] [--socket PATH] [--timeout SECONDS] [--json]

    Sends {"op":"ask"} to the worker: it retrieves the best fact for QUESTION (kept only if
    it beats the Knowledge Sentinel), puts its continuous prompt in front (method recipe;
    recipe+text puts the prompt, then the statement as text; incontext puts the statement
    as text; none uses nothing) and completes QUESTION with
    the LLM. Prints the answer, the fact used and the scores.

      --method M       recipe (default), recipe+text, none, incontext
      --max-tokens N   tokens to generate (default: the worker's limits.defaultGenerationTokens)
      --chat           ask QUESTION as a user turn of the model's chat template (the
                       continuous prompt still in front): what an instruct model such as
                       SmolLM2-135M-Instruct expects for a question typed as a question
      --stop S         end the answer where S starts (repeatable, at most 8; e.g. "." or
                       a newline); the reply's stop_reason says why it ended (stop,
                       length, eos)
      --no-hand-off    keep the continuous prompt for the whole answer (by default the
                       worker's config: the unedited model takes over once the prompt has
                       stated the fact, so the answer goes on as the model writes)
    \(ClientSupport.socketHelp(timeout: timeout, waits: "an answer may queue behind other asks for the one LLM"))
    """
    static let timeout = 120.0
    static let valued: Set<String> = ClientSupport.valued.union(["method", "max-tokens", "stop"])

    static func run(_ args: inout Arguments) throws -> ExitCode {
        let (json, socket, timeout) = try ClientSupport.options(&args, defaultTimeout: timeout)
        let method = args.string("method") ?? "recipe"
        let maxTokens = args.string("max-tokens").map { Int($0) }
        let chat = args.flag("chat"), noHandOff = args.flag("no-hand-off")
        let stop = IngestCommand.repeated("stop").map { $0 == "\\n" ? "\n" : $0 }
        _ = args.string("stop")
        try args.rejectUnknown()
        if let m = maxTokens, m == nil { throw UsageError("--max-tokens expects an integer") }
        guard ["recipe", "recipe+text", "none", "incontext"].contains(method) else {
            throw UsageError("--method must be recipe, recipe+text, none or incontext")
        }
        let request = AskRequest(question: try args.text("QUESTION"), maxTokens: maxTokens ?? nil, method: method,
                                 chat: chat ? true : nil, stop: stop.isEmpty ? nil : stop, handOff: noHandOff ? false : nil)
        return ClientSupport.exchange(request, socket: socket, timeout: timeout, json: json) { r in
            var s = "\(r.answer)\n"
            if let f = r.fact {
                s += "  fact: \(f.statement) [\(f.id)] score \(ClientSupport.number(r.score))"
            } else {
                s += "  fact: none (best score \(ClientSupport.number(r.score)))"
            }
            s += ", sentinel \(ClientSupport.number(r.sentinelScore))\n"
            s += "  \(r.method), \(r.tokens) tokens (\(r.stopReason)), \(ClientSupport.number(r.latencyMS, "%.0f")) ms"
            return s
        }
    }
}

enum AddCommand: Subcommand {
    static let name = "add"
    static let summary = "add a fact to the running worker (returns once durable)"
    static let help = """
    usage: recipe add --prompt P --target T [--subject S] [--id ID] [--socket PATH] [--timeout SECONDS] [--json]
           recipe add --statement S [--id ID] ...

    Sends {"op":"add"}; the worker replies once the fact is in the fsynced log. A fact with
    the same subject and prompt and a new target supersedes the old one.

      --prompt P       the sentence to complete ("The mother tongue of Danielle Darrieux is")
      --target T       its new completion ("English")
      --subject S      the subject ("Danielle Darrieux"), enables supersession
      --statement S    a whole statement instead of --prompt/--target
      --id ID          a stable id (default: derived from the text)
    \(ClientSupport.socketHelp(timeout: timeout, waits: "a fact with --prompt and --target is refined first, ~1 s, and waits for the time step it joins"))

    After a timeout the fact may still be stored: `recipe ask` or `retrieve` tells.
    """
    static let timeout = 300.0
    static let valued: Set<String> = ClientSupport.valued.union(["prompt", "target", "subject", "statement", "id"])

    static func run(_ args: inout Arguments) throws -> ExitCode {
        let (json, socket, timeout) = try ClientSupport.options(&args, defaultTimeout: timeout)
        var fact = FactInput(statement: args.string("statement"), prompt: args.string("prompt"), target: args.string("target"),
                             subject: args.string("subject"), id: args.string("id"))
        try args.rejectUnknown()
        guard !args.positional.isEmpty || fact != FactInput() else { throw UsageError("give --prompt and --target, or --statement") }
        if fact == FactInput() { fact.statement = args.positional.joined(separator: " ") }
        if fact.statement == nil && (fact.prompt == nil || fact.target == nil) {
            throw UsageError("give --prompt and --target, or --statement")
        }
        return ClientSupport.exchange(AddRequest(fact: fact), socket: socket, timeout: timeout, json: json) { r in
            "\(r.outcome?.status ?? "?") \(r.outcome?.factID ?? "") (time step \(r.timeStep))"
        }
    }
}

enum RetractCommand: Subcommand {
    static let name = "retract"
    static let summary = "retract a fact from the running worker"
    static let help = """
    usage: recipe retract --id ID | --statement S [--socket PATH] [--timeout SECONDS] [--json]

    Sends {"op":"retract"}; the worker replies once the retraction is durable.
    \(ClientSupport.socketHelp(timeout: timeout, waits: "it waits for the time step it joins"))
    """
    static let timeout = 300.0
    static let valued: Set<String> = ClientSupport.valued.union(["id", "statement"])

    static func run(_ args: inout Arguments) throws -> ExitCode {
        let (json, socket, timeout) = try ClientSupport.options(&args, defaultTimeout: timeout)
        let id = args.string("id"), statement = args.string("statement")
        try args.rejectUnknown()
        let request: RetractRequest
        switch (id, statement) {
        case (let i?, nil): request = RetractRequest(factID: i)
        case (nil, let s?): request = RetractRequest(statement: s)
        default: throw UsageError("give exactly one of --id and --statement")
        }
        return ClientSupport.exchange(request, socket: socket, timeout: timeout, json: json) { r in
            "\(r.outcome?.status ?? "?") \(r.outcome?.factID ?? r.outcome?.target ?? "") (time step \(r.timeStep))"
        }
    }
}

/// A client command with no options of its own: sends its request (a request type without
/// fields) and renders the reply.
protocol PlainClientCommand: Subcommand {
    associatedtype Call: WorkerRequest
    static var request: Call { get }
    /// `--timeout`'s default, and what the command waits for (its help says it).
    static var timeout: Double { get }
    static var waits: String { get }
    static func render(_ reply: Call.Reply) -> String
}

extension PlainClientCommand {
    static var help: String {
        "usage: recipe \(name) [--socket PATH] [--timeout SECONDS] [--json]\n\(ClientSupport.socketHelp(timeout: timeout, waits: waits))"
    }
    static var valued: Set<String> { ClientSupport.valued }

    static func run(_ args: inout Arguments) throws -> ExitCode {
        let (json, socket, timeout) = try ClientSupport.options(&args, defaultTimeout: timeout)
        try args.rejectUnknown()
        return ClientSupport.exchange(request, socket: socket, timeout: timeout, json: json, human: render)
    }
}

enum StatsCommand: PlainClientCommand {
    static let name = "stats"
    static let summary = "counts of the running worker and its repository"
    static let request = StatsRequest()
    static let timeout = 30.0
    static let waits = "stats may wait for a commit in progress"

    static func render(_ r: StatsReply) -> String {
        let repo = r.repository, w = r.worker
        let refined = r.refinement.map { "\($0.facts) facts, \($0.steps) steps" } ?? "off"
        let states = r.promptStates.map {
            "\($0.entries) of \($0.capacity) kept, \($0.hits) hits, \($0.misses) misses, \($0.errors) errors"
        } ?? "off"
        return """
        editor         \(r.editor)
        live facts     \(repo.liveFacts) (rows \(repo.rows), dead \(repo.deadRows))
        time step      \(repo.timeStep) (log \(repo.logRecords) records, \(repo.logBytes) bytes)
        ingested       \(w.factsStored) stored, \(w.factsDuplicate) duplicates, \(w.factsRejected) rejected
        refined        \(refined)
        prompt states  \(states)
        asks           \(w.asks) (\(w.tokensGenerated) tokens)
        connections    \(w.connectionsOpen) open, \(w.connectionsTotal) total
        uptime         \(ClientSupport.number(w.uptimeSeconds, "%.0f")) s
        """
    }
}

enum HealthCommand: PlainClientCommand {
    static let name = "health"
    static let summary = "check that the worker answers (exit 0 when healthy, 69 when unreachable or silent)"
    static let request = HealthRequest()
    static let timeout = 5.0
    static let waits = "a healthy worker answers at once, even while it commits"

    static func render(_ r: HealthReply) -> String {
        "\(r.status): \(r.liveFacts) facts, time step \(r.timeStep)"
    }
}
