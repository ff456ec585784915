// The manifest binds the matrix files to the encoder (fingerprint and dimensions), names
// their generation, and records the last log record whose rows are on disk. It is
// replaced atomically (temp + fsync + rename + directory fsync) at the end of every time
// step. File: "RCPMANIFEST1 <crc32c of the JSON, 8 hex digits>\n" then the JSON.
import Foundation
import Posix

struct Manifest: Codable, Equatable {
    var version: Int = 1
    var fingerprint: String
    var keyDimension: Int
    var promptRows: Int
    var promptWidth: Int
    /// Suffix of the matrix files: keys.<g>.f32, prompts.<g>.f32, rows.<g>.u64.
    var generation: UInt64
    /// Rows in use, sentinel included.
    var rowCount: Int
    /// Every add record up to this sequence that is live in the layout has its row.
    var appliedSequence: UInt64
    /// The last committed time step.
    var timeStep: UInt64

    static let tag = "RCPMANIFEST1"

    func serialized() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        let json = Array(try encoder.encode(self))
        return Array("\(Self.tag) \(hex(CRC32C.checksum(json)))\n".utf8) + json
    }

    func write(to path: String) throws {
        let bytes: [UInt8]
        do { bytes = try serialized() } catch { throw StorageError.badManifest(path: path, reason: "encoding: \(error)") }
        try posix { try FileSystem.atomicReplace(path, with: bytes) }
    }

    /// The manifest at `path`; nil when there is none; `badManifest` when it is corrupt.
    static func read(from path: String) throws -> Manifest? {
        guard FileSystem.exists(path) else { return nil }
        let bytes = try posix { try FileSystem.readFile(path) }
        guard let newline = bytes.firstIndex(of: 0x0A),
              let head = String(validating: bytes[..<newline], as: UTF8.self) else {
            throw StorageError.badManifest(path: path, reason: "no header line")
        }
        let parts = head.split(separator: " ")
        guard parts.count == 2, parts[0] == tag, let stored = UInt32(parts[1], radix: 16) else {
            throw StorageError.badManifest(path: path, reason: "header \"\(head.prefix(40))\", expected \"\(tag) <crc>\"")
        }
        let json = Array(bytes[(newline + 1)...])
        let actual = CRC32C.checksum(json)
        guard actual == stored else {
            throw StorageError.badManifest(path: path, reason: "checksum mismatch: stored \(hex(stored)), computed \(hex(actual))")
        }
        let m: Manifest
        do { m = try JSONDecoder().decode(Manifest.self, from: Data(json)) } catch {
            throw StorageError.badManifest(path: path, reason: "JSON: \(error)")
        }
        guard m.version == 1 else {
            throw StorageError.badManifest(path: path, reason: "version \(m.version), expected 1")
        }
        return m
    }
}
