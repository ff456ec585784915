// A small command-line parser: `--flag`, `--option value`, `--option=value` and
// positional arguments, with errors that name the offending argument.
import Foundation

struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

struct Arguments {
    private(set) var positional: [String] = []
    private var options: [String: String] = [:]
    private var flags: Set<String> = []
    private var consumed: Set<String> = []

    /// Parses `argv` given the names of the options that take a value (without `--`).
    init(_ argv: [String], valued: Set<String>) throws {
        var i = 0
        var onlyPositional = false
        while i < argv.count {
            let a = argv[i]
            i += 1
            if onlyPositional || !a.hasPrefix("--") || a == "-" {
                positional.append(a)
                continue
            }
            if a == "--" { onlyPositional = true; continue }
            var name = String(a.dropFirst(2))
            var value: String?
            if let eq = name.firstIndex(of: "=") {
                value = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            if valued.contains(name) {
                if value == nil {
                    guard i < argv.count else { throw UsageError("--\(name) needs a value") }
                    value = argv[i]
                    i += 1
                }
                options[name] = value
            } else {
                guard value == nil else { throw UsageError("--\(name) takes no value") }
                flags.insert(name)
            }
        }
    }

    mutating func flag(_ name: String) -> Bool {
        consumed.insert(name)
        return flags.contains(name)
    }

    mutating func string(_ name: String) -> String? {
        consumed.insert(name)
        return options[name]
    }

    mutating func int(_ name: String, default fallback: Int) throws -> Int {
        try int(name) ?? fallback
    }

    /// An integer, or nil when the option is absent.
    mutating func int(_ name: String) throws -> Int? {
        guard let s = string(name) else { return nil }
        guard let v = Int(s) else { throw UsageError("--\(name) expects an integer, got '\(s)'") }
        return v
    }

    /// A finite number, or nil when the option is absent.
    mutating func float(_ name: String) throws -> Float? { try number(name) }

    /// A finite number, or nil when the option is absent.
    mutating func double(_ name: String) throws -> Double? { try number(name) }

    private mutating func number<T: BinaryFloatingPoint & LosslessStringConvertible>(_ name: String) throws -> T? {
        guard let s = string(name) else { return nil }
        guard let v = T(s), v.isFinite else { throw UsageError("--\(name) expects a number, got '\(s)'") }
        return v
    }

    /// Fails on any option or flag no subcommand asked for.
    func rejectUnknown() throws {
        let unknown = Set(options.keys).union(flags).subtracting(consumed)
        if let first = unknown.sorted().first { throw UsageError("unknown option --\(first)") }
    }
}
