// `recipe version`
enum VersionCommand: Subcommand {
    static let name = "version"
    static let summary = "print the version"
    static let help = "usage: recipe version\n\nPrints the version of this build."
    static let valued: Set<String> = []
    static func run(_ args: inout Arguments) throws -> ExitCode {
        try args.rejectUnknown()
        print("recipe 0.1.0")
        return .ok
    }
}
