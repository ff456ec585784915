// Progress on stderr: on a terminal a one-line bar redrawn in place; otherwise (logs, CI,
// systemd) a plain line at every tenth of the work, so long runs stay visible in a log.
import Foundation

struct ProgressBar {
    let total: Int
    let label: String
    let enabled: Bool
    private let start = Date()
    private var lastDraw = Date.distantPast
    private var lastTenth = 0

    init(total: Int, label: String, enabled: Bool = Console.stderrIsTerminal) {
        self.total = total
        self.label = label
        self.enabled = enabled
    }

    /// A `(done, total)` callback for work that reports its total as it goes: a bar
    /// labelled `label`, started anew whenever the total changes.
    static func reporter(_ label: String) -> (Int, Int) -> Void {
        var bar = ProgressBar(total: 1, label: label)
        return { done, total in
            if bar.total != total { bar = ProgressBar(total: total, label: label) }
            bar.update(done)
        }
    }

    /// Redraws at most ten times a second (and always at the end).
    mutating func update(_ done: Int, _ detail: String = "") {
        guard enabled else {
            let tenth = total > 0 ? done * 10 / total : 10
            if tenth > lastTenth {
                lastTenth = tenth
                let elapsed = Date().timeIntervalSince(start)
                Console.note("\(label): \(done)/\(total) (\(Self.duration(elapsed)))" + (detail.isEmpty ? "" : " " + detail))
            }
            return
        }
        let now = Date()
        guard done >= total || now.timeIntervalSince(lastDraw) >= 0.1 else { return }
        lastDraw = now
        let elapsed = now.timeIntervalSince(start)
        let fraction = total > 0 ? Double(done) / Double(total) : 1
        let width = 24
        let filled = min(width, Int(fraction * Double(width)))
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let eta = rate > 0 && done < total ? String(format: " eta %@", Self.duration(Double(total - done) / rate)) : ""
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let line = String(format: "\r%@ %@ %d/%d %.1f/s%@ %@", label, bar, done, total, rate, eta, detail)
        Console.err((line + "\u{1B}[K"))
        if done >= total { Console.err("\n") }
    }

    static func duration(_ s: Double) -> String {
        s < 60 ? String(format: "%.0fs", s) : s < 3600 ? String(format: "%dm%02ds", Int(s) / 60, Int(s) % 60)
            : String(format: "%dh%02dm", Int(s) / 3600, Int(s) % 3600 / 60)
    }
}
