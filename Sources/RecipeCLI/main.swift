// `recipe`: the one executable. Each subcommand lives in its own file as a `Subcommand`.
import Foundation
import Glibc
import Posix
import Worker

/// Exit codes that scripts can rely on.
enum ExitCode: Int32 {
    case ok = 0
    case failure = 1      // the work failed (bad model file, I/O error, ...)
    case usage = 2        // bad command line
    case unavailable = 69 // a service (the worker socket) is not reachable
}

protocol Subcommand {
    static var name: String { get }
    static var summary: String { get }
    /// Full help text shown by `recipe NAME --help`.
    static var help: String { get }
    /// Options that take a value (without `--`).
    static var valued: Set<String> { get }
    static func run(_ args: inout Arguments) throws -> ExitCode
}

let subcommands: [any Subcommand.Type] = [
    GenerateCommand.self,
    EmbedCommand.self,
    EvalCommand.self,
    TokenizeCommand.self,
    TrainCommand.self,
    VersionCommand.self,
    BenchCommand.self,
    ServeCommand.self,
    AskCommand.self,
    AddCommand.self,
    RetractCommand.self,
    StatsCommand.self,
    HealthCommand.self,
    IngestCommand.self,
    RepairCommand.self,
    PublishCommand.self,
]

@MainActor func mainHelp() -> String {
    var s = "usage: recipe <command> [options]\n\nLifelong knowledge editing (RECIPE) as a streaming worker.\n\ncommands:\n"
    for c in subcommands { s += "  \(c.name.padding(toLength: 12, withPad: " ", startingAt: 0))\(c.summary)\n" }
    s += "\nRun `recipe <command> --help` for a command's options.\n"
    return s
}

@MainActor func runMain() -> Int32 {
    var argv = Array(CommandLine.arguments.dropFirst())
    guard let name = argv.first, name != "--help", name != "-h", name != "help" else {
        print(mainHelp(), terminator: "")
        return argv.isEmpty ? ExitCode.usage.rawValue : ExitCode.ok.rawValue
    }
    argv.removeFirst()
    guard let command = subcommands.first(where: { $0.name == name }) else {
        Console.err("recipe: unknown command '\(name)'\n\n\(mainHelp())")
        return ExitCode.usage.rawValue
    }
    if argv.contains("--help") || argv.contains("-h") {
        print(command.help, terminator: command.help.hasSuffix("\n") ? "" : "\n")
        return ExitCode.ok.rawValue
    }
    do {
        var args = try Arguments(argv, valued: command.valued)
        return try command.run(&args).rawValue
    } catch let e as UsageError {
        Console.err("recipe \(name): \(e)\n(see `recipe \(name) --help`)\n")
        return ExitCode.usage.rawValue
    } catch {
        Console.err("recipe \(name): \(error)\n")
        return ExitCode.failure.rawValue
    }
}

// `recipe serve` takes SIGTERM/SIGINT/SIGHUP through a signalfd: they must be blocked
// before any thread exists (threads inherit the mask), so this is the first thing it does.
let serveSignals: Result<SignalDescriptor, Error>? =
    CommandLine.arguments.dropFirst().first == "serve" ? Result {
        let d = try SignalDescriptor(blocking: [SIGTERM, SIGINT, SIGHUP])
        SignalForwarding.install(d.signals)  // for the threads OpenBLAS started before main
        return d
    } : nil

exit(runMain())
