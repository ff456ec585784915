// Names of the files the sources leave beside what they read: an inbox file's place in the
// done and rejected areas, its `.rejections` file, the `.1`, `.2` of a name dropped in
// again, a pipe's rejected-lines file. An inbox takes any name its file system takes (up to
// NAME_MAX, 255 bytes), so a name with a suffix added can be too long (ENAMETOOLONG), and a
// file that cannot be moved aside would be read again at every start. Each derived name
// therefore fits in `limit` bytes, which leaves room for the ".tmp" that
// `FileSystem.atomicReplace` adds while writing; a name that would not fit is cut on a UTF-8
// boundary and made unique again by a hash of the whole name, keeping its extension so that
// rejected lines can be fixed and dropped into the inbox again.
import Posix

enum SideFileName {
    /// Longest derived name, in bytes: NAME_MAX less ".tmp".
    static let limit = FileSystem.nameMax - 4

    /// `name + suffix` for each suffix when the longest fits in `limit`; otherwise for every
    /// suffix alike (so that the names of one file still sort together) the name's start
    /// cut on a UTF-8 boundary, "-", 8 hex digits of the CRC-32C of the whole name, the
    /// name's extension (".jsonl"; none when longer than 16 bytes) and the suffix.
    static func fitted(_ name: String, suffixes: [String]) -> [String] {
        let longest = suffixes.map(\.utf8.count).max() ?? 0
        if name.utf8.count + longest <= limit { return suffixes.map { name + $0 } }
        var stem = Array(name.utf8)
        var ext: [UInt8] = []
        if let dot = stem.lastIndex(of: UInt8(ascii: ".")), dot > 0, stem.count - dot <= 16 {
            ext = Array(stem[dot...])
            stem.removeSubrange(dot...)
        }
        let hash = String(CRC32C.checksum(Array(name.utf8)), radix: 16)
        let tag = Array(("-" + String(repeating: "0", count: 8 - hash.count) + hash).utf8)
        var keep = max(0, limit - longest - tag.count - ext.count)
        // Not inside a character: back up over UTF-8 continuation bytes (10xxxxxx).
        while keep > 0 && keep < stem.count && stem[keep] & 0xC0 == 0x80 { keep -= 1 }
        let base = String(decoding: stem.prefix(keep) + tag + ext, as: UTF8.self)
        return suffixes.map { base + $0 }
    }

    /// The first free set of `fitted` names in `directory`: `name + suffix`, else with ".1",
    /// ".2", ... before each suffix (`a.jsonl.1`, `a.jsonl.1.rejections`). A name counts as
    /// taken when anything has it, a dangling symbolic link too (`lstat`), since `rename(2)`
    /// would silently replace it.
    static func unique(in directory: String, _ name: String, suffixes: [String]) -> [String] {
        var n = 0
        while true {
            let counter = n == 0 ? "" : ".\(n)"
            let names = fitted(name, suffixes: suffixes.map { counter + $0 }).map { directory + "/" + $0 }
            if !names.contains(where: FileSystem.entryExists) { return names }
            n += 1
        }
    }
}
