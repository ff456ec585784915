// `stats`, `health` and `metrics`: the counts of the repository, the worker and its parts,
// as replies (Protocol.md) and as the Prometheus text.
import Foundation
import Storage
import WorkerAPI

extension RequestHandler {
    func stats() throws -> StatsReply {
        let s = repository.stats
        let repositoryCounts = StatsReply.Repository(
            liveFacts: s.liveFacts, rows: s.rows, deadRows: s.deadRows, timeStep: s.timeStep, generation: s.generation,
            logRecords: s.logRecords, logBytes: s.logBytes, keyDimension: s.keyDimension, promptRows: s.promptRows,
            promptWidth: s.promptWidth, fingerprint: s.fingerprint, contentFingerprint: String(format: "%08x", repository.contentFingerprint))
        let worker = state.metrics.summary()
        // The stream source keeps its state as the fields `stats` shows (JetStreamStatus).
        let jetstream = try state.jetstream.summary().map { fields in
            guard let value = JSONValue(jsonObject: fields) else { throw RequestError("internal", "the JetStream status is not JSON") }
            return try value.decode(StatsReply.JetStream.self)
        }
        return StatsReply(
            editor: engine.editor, repository: repositoryCounts, worker: worker, jetstream: jetstream,
            refinement: engine.refinementCounts.map { StatsReply.Refinement(facts: $0.facts, steps: $0.steps, unchanged: $0.unchanged) },
            batch: engine.batchCounts.map { StatsReply.Batch(running: $0.running, waiting: $0.waiting, largest: $0.largest, max: $0.max, steps: $0.steps) },
            promptStates: engine.promptStateCounts.map {
                StatsReply.PromptStates(entries: $0.entries, capacity: engine.promptStateCapacity, hits: $0.hits, misses: $0.misses,
                                        stored: $0.stored, errors: $0.errors, skippedForSpace: $0.skippedForSpace)
            })
    }

    func health() -> HealthReply {
        let snap = repository.snapshot()
        return HealthReply(status: state.stopping ? "stopping" : "ok", timeStep: snap.timeStep, liveFacts: snap.liveCount,
                           uptimeSeconds: Date().timeIntervalSince(state.metrics.started))
    }

    public func metricsText() -> String {
        let snap = repository.snapshot()
        let refined = engine.refinementCounts, states = engine.promptStateCounts
        var gauges: [(name: String, help: String, value: Double)] = [
            ("recipe_live_facts", "Live facts in the repository.", Double(snap.liveCount)),
            ("recipe_repository_rows", "Matrix rows in use, sentinel included.", Double(snap.rowCount)),
            ("recipe_time_step", "Last committed time step.", Double(snap.timeStep)),
        ]
        var counters: [(name: String, help: String, value: Int)] = []
        if let r = refined {
            counters += [("recipe_refined_facts_total", "Facts whose prompt was refined at ingestion.", r.facts),
                         ("recipe_refinement_steps_total", "Adam steps of prompt refinement.", r.steps)]
        }
        if let s = states {
            gauges.append(("recipe_prompt_states", "Prompts whose keys and values are kept on disk.", Double(s.entries)))
            counters += [("recipe_prompt_state_hits_total", "Asks that read their prompt's keys and values from disk.", s.hits),
                         ("recipe_prompt_state_misses_total", "Asks that found them neither in memory nor on disk.", s.misses),
                         ("recipe_prompt_states_stored_total", "Prompts whose keys and values were written to disk.", s.stored),
                         ("recipe_prompt_state_errors_total", "Damaged prompt states found, or failed reads and writes.", s.errors),
                         ("recipe_prompt_states_skipped_for_space_total", "Prompt states not kept to leave the disk's reserve free.",
                          s.skippedForSpace)]
        }
        if let b = engine.batchCounts {
            gauges += [("recipe_batch_answers", "Answers being generated together now.", Double(b.running)),
                       ("recipe_batch_waiting", "Asks waiting to join the batch.", Double(b.waiting))]
            counters.append(("recipe_batch_steps_total", "Decode steps of the batch (one pass over the weights each).", b.steps))
        }
        let stream = state.jetstream.prometheus()
        return state.metrics.prometheus(gauges: gauges + stream.gauges, counters: counters + stream.counters)
    }
}
