// What replicas compare: a fingerprint of the content (the live facts, in log order) and
// how far a source got (the highest line stored from it), both read from the fact table,
// so that neither needs anything new in the log.
import Posix

extension Repository {
    /// CRC-32C over the live facts in log order, each as its id, statement, prompt, target
    /// and subject (u32 length + UTF-8 each, absent as 0xFFFFFFFF). Sources, times and
    /// sequence numbers are left out: two workers fed the same facts in the same order,
    /// from any source, have the same fingerprint. O(live facts) per call.
    public var contentFingerprint: UInt32 {
        let facts: [StoredFact] = mutex.withLock { table.facts.values.filter(\.live).sorted { $0.sequence < $1.sequence } }
        var crc: UInt32 = 0
        var bytes: [UInt8] = []
        func field(_ s: String?) {
            guard let s else { bytes += [0xFF, 0xFF, 0xFF, 0xFF]; return }
            let u = Array(s.utf8)
            let n = UInt32(u.count)
            bytes += [UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 24)]
            bytes += u
        }
        for f in facts {
            bytes.removeAll(keepingCapacity: true)
            field(f.fact.id); field(f.fact.statement); field(f.fact.prompt); field(f.fact.target); field(f.fact.subject)
            crc = bytes.withUnsafeBytes { CRC32C.checksum($0, continuing: crc) }
        }
        return crc
    }

    /// The highest `line` among the facts (live or not) stored from a source of `kind`
    /// named `name` (or "`name` [label]": a fact's own source label); 0 when none. A log
    /// compaction keeps only live facts, so afterwards this may be lower than it was (the
    /// stream source then sees a few messages again; they are duplicates or retractions
    /// of what is already gone).
    public func highestLine(ofSource kind: FactSource.Kind, named name: String) -> UInt64 {
        let labelled = name + " ["
        return mutex.withLock {
            var best: UInt64 = 0
            for f in table.facts.values where f.fact.source.kind == kind {
                let s = f.fact.source
                guard s.name == name || s.name.hasPrefix(labelled), let line = s.line else { continue }
                best = max(best, UInt64(line))
            }
            return best
        }
    }
}
