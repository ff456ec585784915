// The content fingerprint replicas compare: equal for the same live facts in the same
// order whatever their sources, different when the order or a fact differs, unchanged by
// a reopen; and the highest line a source stored, which the stream source resumes after.
import Foundation
import Storage
import Testing

struct ContentFingerprintTests {
    func repository(_ ops: [FactOperation]) throws -> Repository {
        let r = try Repository(path: try temporaryPath("fingerprint") + "/repo", encoder: HashingFactEncoder(keyDimension: 16))
        _ = try r.commit(ops)
        return r
    }

    @Test func sameFactsSameOrderSameFingerprint() throws {
        let pipe = FactSource(kind: .pipe, name: "jetstream:facts", line: 7)
        let a = try repository([add("Paris is in France"), add("Rome is in Italy"), .retractStatement("Paris is in France")])
        let b = try repository([.add(statement: "Paris is in France", source: pipe), .add(statement: "Rome is in Italy", source: pipe),
                                .retractStatement("Paris is in France")])
        let c = try repository([add("Rome is in Italy")])
        #expect(a.contentFingerprint == b.contentFingerprint && a.contentFingerprint == c.contentFingerprint)
        let swapped = try repository([add("Berlin is in Germany"), add("Rome is in Italy")])
        let ordered = try repository([add("Rome is in Italy"), add("Berlin is in Germany")])
        #expect(swapped.contentFingerprint != ordered.contentFingerprint)
        #expect(try repository([add("Rome is in Italia")]).contentFingerprint != c.contentFingerprint)
        let path = ordered.path, before = ordered.contentFingerprint
        try ordered.close()
        #expect(try Repository(path: path, encoder: HashingFactEncoder(keyDimension: 16)).contentFingerprint == before)
    }

    @Test func highestLineOfASourceCountsRetractedFactsToo() throws {
        func src(_ line: Int, _ name: String = "jetstream:facts") -> FactSource { FactSource(kind: .pipe, name: name, line: line) }
        let r = try repository([.add(statement: "A is one", source: src(3)), .add(statement: "B is two", source: src(9)),
                                .add(statement: "C is three", source: src(40, "jetstream:other")),
                                .add(statement: "D is four", source: src(11, "jetstream:facts [feed-a]"))])
        _ = try r.commit([.retractStatement("D is four")])
        #expect(r.highestLine(ofSource: .pipe, named: "jetstream:facts") == 11)
        #expect(r.highestLine(ofSource: .pipe, named: "jetstream:other") == 40)
        #expect(r.highestLine(ofSource: .file, named: "jetstream:facts") == 0)
    }
}
