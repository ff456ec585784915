// Shared helpers of the storage tests: temporary repositories and byte surgery on files.
import Foundation
import Posix
import Storage
import TestSupport

func temporaryPath(_ tag: String = "storage") throws -> String {
    try Fixtures.temporaryDirectory(tag).path
}

func add(_ statement: String, prompt: String? = nil, target: String? = nil, subject: String? = nil,
         id: String? = nil) -> FactOperation {
    .add(statement: statement, prompt: prompt, target: target, subject: subject, id: id, source: .api)
}

/// A prompt/target fact whose statement is prompt + " " + target.
func fact(_ prompt: String, _ target: String, subject: String? = nil, id: String? = nil) -> FactOperation {
    .add(statement: prompt + " " + target, prompt: prompt, target: target, subject: subject, id: id, source: .api)
}

func readBytes(_ path: String) throws -> [UInt8] { try FileSystem.readFile(path) }

func writeBytes(_ path: String, _ bytes: [UInt8]) throws {
    let fd = try FileDescriptor.open(path, O_WRONLY | O_CREAT | O_TRUNC)
    try fd.writeAll(bytes)
    try fd.close()
}

/// The ids of the live facts, sorted.
func liveIDs(_ repo: Repository) -> [String] { repo.snapshot().liveFacts.map(\.id).sorted() }

/// Top-1 retrieval of `statement`'s own key: the fact id that comes back, if any.
func retrieve(_ repo: Repository, _ encoder: HashingFactEncoder, _ statement: String) throws -> String? {
    try repo.snapshot().search(encoder.key(for: statement), k: 1).hits.first?.fact.id
}

/// Everything a reader can observe of a repository, for equality checks.
struct Observed: Equatable {
    var facts: [String: [Float]]      // id -> key
    var prompts: [String: [Float]]    // id -> prompt
    var sentinelKey: [Float]
}

func observe(_ repo: Repository) -> Observed {
    let s = repo.snapshot()
    var keys: [String: [Float]] = [:], prompts: [String: [Float]] = [:]
    for row in 1..<s.rowCount where s.isLive(row: row) {
        let id = s.fact(row: row)!.id
        keys[id] = s.key(row: row)
        prompts[id] = s.prompt(row: row)
    }
    return Observed(facts: keys, prompts: prompts, sentinelKey: s.key(row: 0))
}
