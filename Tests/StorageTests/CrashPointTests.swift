// kill -9 at every system call: a process kill loses only the process's memory, so the
// files as `read` sees them at that moment are exactly what a restarted worker finds.
// The plan's observer copies the repository before each call of a sequence of time steps
// (and a compaction); every copy must open, hold exactly the live facts of before or after
// the step in flight (a step is all or nothing; an unacknowledged step may survive a kill,
// since its bytes were already in the page cache), and retrieve every live fact.
import Foundation
import Posix
import Storage
import Testing

private final class CrashCopies: @unchecked Sendable {
    let lock = NSLock()
    let source: String
    /// Index of the step in flight (the compaction and close count as the last step).
    var step = 0
    var copies: [(path: String, step: Int, at: String)] = []
    init(source: String) { self.source = source }

    /// Copies the directory with FileManager (not through the syscall funnel).
    func capture(_ kind: SyscallKind, _ n: Int) {
        lock.lock()
        defer { lock.unlock() }
        let target = source + "-crash-\(copies.count)"
        let fm = FileManager.default
        try? fm.createDirectory(atPath: target, withIntermediateDirectories: true)
        for name in (try? fm.contentsOfDirectory(atPath: source)) ?? [] where name != "LOCK" && name != "torn" {
            if let data = fm.contents(atPath: source + "/" + name) {
                _ = fm.createFile(atPath: target + "/" + name, contents: data)
            }
        }
        copies.append((target, step, "before \(kind) #\(n)"))
    }
}

@Suite struct CrashPointTests {
    @Test func killAtEverySystemCallLosesNothingAcknowledged() throws {
        let dir = try temporaryPath("crash")
        let enc = HashingFactEncoder()
        let repo = try Repository(path: dir, encoder: enc)
        _ = try repo.commit([add("Before the plan")])
        let crash = CrashCopies(source: dir)
        let plan = FaultPlan()
        plan.observer = { kind, n in crash.capture(kind, n) }
        let p = "The capital of Narnia is"
        let steps: [[FactOperation]] = [
            [add("Alpha"), add("Beta"), fact(p, "Cair Paravel", subject: "Narnia")],
            [fact(p, "Aslan's How", subject: "Narnia"), .retractStatement("Alpha")],
            (0..<70).map { add("Growth fact \($0)") },  // grows the matrix files
            [add("Last one"), .retractStatement("Beta")],
            [add("After the log compaction")],
        ]
        var states = [Set(liveIDs(repo))]  // states[i + 1]: live after step i
        try plan.run {
            for (i, ops) in steps.enumerated() {
                crash.lock.withLock { crash.step = i }
                _ = try repo.commit(ops)
                states.append(Set(liveIDs(repo)))
                if i == 2 { _ = try repo.compact() }
                if i == 3 { _ = try repo.compactLog() }
            }
            try repo.close()
        }
        let final = states.last!
        #expect(crash.copies.count > 50)
        for copy in crash.copies {
            let opened = try Repository(path: copy.path, encoder: enc)
            let live = Set(liveIDs(opened))
            #expect(live == states[copy.step] || live == states[copy.step + 1],
                    "crash during step \(copy.step) \(copy.at): live \(live.count), expected \(states[copy.step].count) or \(states[copy.step + 1].count)")
            for f in opened.snapshot().liveFacts {
                #expect(try retrieve(opened, enc, f.statement) == f.id, "crash \(copy.at): \(f.id) not retrievable")
            }
            #expect(opened.openReport.skippedRecords.isEmpty)
            #expect(opened.openReport.tornTail == nil)
            try opened.close()
        }
        // The last copy was taken during the final close: it reopens to the final view.
        let last = try Repository(path: crash.copies.last!.path, encoder: enc)
        #expect(Set(liveIDs(last)) == final)
        #expect(last.openReport.rowsApplied == 0)
        #expect(last.openReport.rebuilt == nil)
        try last.close()
        for copy in crash.copies { try? FileManager.default.removeItem(atPath: copy.path) }
        try? FileManager.default.removeItem(atPath: dir)
    }
}
