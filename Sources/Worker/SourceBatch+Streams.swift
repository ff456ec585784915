// The batch of lines read from a stream (a named pipe, standard input, a JetStream stream).
// Such lines exist nowhere else once read: a failed commit cannot give them back (the
// committer carries them to its next step), and their rejections, with the lines
// themselves, are written to the source's rejection log when the batch completes, since
// there is no file to move into a rejected area.
import Storage

extension SourceBatch {
    /// - Parameters:
    ///   - rejectionLog: the source's log at completion time (nil: the rejections are only
    ///     in the step's report).
    ///   - acknowledge: what the source does once the batch is durable, after its
    ///     rejections are written down (a stream acknowledges its messages).
    static func streamLines(_ origin: Origin, _ result: ParseResult, rejectionLog: @escaping @Sendable () -> RejectionLog?,
                            acknowledge: (@Sendable (SourceBatch) -> Void)? = nil) -> SourceBatch {
        SourceBatch(origin: origin, facts: result.facts, rejections: result.rejections, complete: { batch, outcomes in
            var done = Completion(rejections: batch.rejections)
            for (fact, outcome) in zip(batch.facts, outcomes) {
                guard let why = OutcomeSummary.refusal(outcome) else { continue }
                done.rejections.append(FactRejection(file: origin.description, line: fact.line, reason: .refused(why), text: fact.text))
            }
            if !done.rejections.isEmpty, let log = rejectionLog() {
                // Lines read from a stream exist nowhere else: write them down now.
                do {
                    try log.append(done.rejections)
                    done.keptIn = log.path
                } catch {
                    done.failure = "rejected lines not kept: \(error)"
                }
            }
            acknowledge?(batch)
            return done
        }, release: { false })
    }
}
