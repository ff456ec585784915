// Output of `recipe ingest`: JSON lines on stdout, notes on stderr, each with one write(2)
// (so a line is in the file before the next step starts, and kill -9 cannot leave half a
// buffered line behind). Unlike FileHandle.write, a closed reader (EPIPE: `| head`, a dead
// log collector) does not crash the worker: its facts are durable either way, so it keeps
// ingesting and says so once on stderr.
import Foundation
import Glibc

enum IngestOutput {
    nonisolated(unsafe) private static var stdoutBroken = false

    /// One compact JSON object and a newline on stdout.
    static func json(_ object: [String: Any]) {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
            ?? Data("{\"event\":\"error\",\"reason\":\"unencodable line\"}".utf8)
        if !write(1, Array(data) + [0x0A]) && !stdoutBroken {
            stdoutBroken = true
            note("recipe ingest: standard output is closed (\(String(cString: strerror(errno)))); "
                 + "acknowledgement lines are lost from here on, ingestion goes on")
        }
    }

    /// A line on stderr.
    static func note(_ message: String) {
        _ = write(2, Array((message + "\n").utf8))
    }

    /// write(2) loop, retrying EINTR; false on any other error.
    private static func write(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { buffer in
            var done = 0
            while done < buffer.count {
                let n = Glibc.write(fd, buffer.baseAddress! + done, buffer.count - done)
                if n < 0 { if errno == EINTR { continue }; return false }
                done += n
            }
            return true
        }
    }
}
