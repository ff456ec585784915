// `recipe serve` on a damaged fact log, as an operator meets it: a torn tail is cut and
// reported (log line, stats, metrics); damage in the middle is refused with the repository
// untouched; `recipe repair` salvages it and the worker then serves every intact fact.
import Foundation
import Glibc
import Posix
import TestSupport
import Testing

@Suite(.serialized, .enabled(if: WorkerProcess.available, "needs the recipe binary and the models (Pipelines/fetch-models.sh)"))
struct ServeDamagedLogTests {
    /// Frame offsets of the log's records (16-byte header, then [u32 length][u32 CRC][payload]).
    func frames(_ log: [UInt8]) -> [Int] {
        var offsets: [Int] = [], offset = 16
        while offset + 8 <= log.count {
            offsets.append(offset)
            offset += 8 + (Int(log[offset]) | Int(log[offset + 1]) << 8 | Int(log[offset + 2]) << 16)
        }
        return offsets
    }

    @Test func tornTailIsReportedAndDamageInTheMiddleIsRefusedUntilRepaired() throws {
        let w = try WorkerProcess(tag: "damaged")
        defer { w.remove() }
        try w.start()
        for i in 0..<5 {
            let r = try w.request(["op": "add", "fact": ["statement": "Damage test statement number \(i)", "id": "d\(i)"]])
            #expect(r.ok, "\(r)")
        }
        #expect(try w.stop() == 0)
        let logPath = w.repository + "/facts.log"

        // A torn tail: the last record loses its last 10 bytes.
        var log = try FileSystem.readFile(logPath)
        #expect(frames(log).count == 5)
        log.removeLast(10)
        try FileSystem.atomicReplace(logPath, with: log)
        try w.start()
        let torn = try #require(w.logEvents("torn_tail").first, "a cut tail must be logged: \(w.logTail())")
        #expect(torn["offset"] as? Int == frames(log)[4] && (torn["bytes"] as? Int ?? 0) > 0, "\(torn)")
        #expect(FileManager.default.fileExists(atPath: torn["kept_in"] as? String ?? "/nonexistent"))
        let worker = try w.request(["op": "stats"])["worker"] as? [String: Any] ?? [:]
        #expect(worker["torn_tails"] as? Int == 1 && worker["torn_tail_bytes"] as? Int == torn["bytes"] as? Int, "\(worker)")
        let metrics = try w.request(["op": "metrics"])["metrics"] as? String ?? ""
        #expect(metrics.contains("recipe_torn_tails_total 1"), "\(metrics.prefix(400))")
        #expect(try w.liveFacts() == 4)
        #expect(try w.stop() == 0)

        // Damage in the middle: a flipped byte in record 2 of 4.
        log = try FileSystem.readFile(logPath)
        let second = frames(log)[1]
        log[second + 12] ^= 0x5A
        try FileSystem.atomicReplace(logPath, with: log)
        let files = try FileSystem.list(w.repository).sorted()
        #expect(throws: WorkerFailure.self, "a log damaged in the middle must not be opened") { try w.start(timeout: 30) }
        let refused = try #require(w.logEvents("repository_damaged").first, "\(w.logTail())")
        #expect(refused["offset"] as? Int == second && refused["intact_records_after"] as? Int == 2, "\(refused)")
        #expect(try FileSystem.readFile(logPath) == log, "the refused log is untouched")
        #expect(try FileSystem.list(w.repository).sorted() == files)

        // `recipe repair` keeps every intact record; the worker then serves them.
        let repair = Process()
        repair.executableURL = URL(fileURLWithPath: try #require(WorkerProcess.binary))
        repair.arguments = ["repair", "--repository", w.repository, "--json"]
        let out = Pipe()
        repair.standardOutput = out
        try repair.run()
        repair.waitUntilExit()
        let report = try JSONSerialization.jsonObject(with: out.fileHandleForReading.readDataToEndOfFile()) as? [String: Any] ?? [:]
        #expect(repair.terminationStatus == 0 && report["records_kept"] as? Int == 3, "\(report)")
        try w.start()
        #expect(try w.liveFacts() == 3)
        let ids = Set(((try w.request(["op": "retrieve", "question": "Damage test statement number 3", "k": 5]))["candidates"]
                        as? [[String: Any]] ?? []).compactMap { $0["id"] as? String })
        #expect(ids == ["d0", "d2", "d3"], "\(ids)")
        #expect(try w.stop() == 0)
    }
}
