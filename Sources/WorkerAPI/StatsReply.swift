// The reply to `stats` (Protocol.md, "stats, health, metrics"): the editor, the repository,
// the worker's counters, and the parts that may be off (JetStream source, prompt
// refinement, continuous batching, prompt states on disk), each null when off.
import Foundation

public struct StatsReply: Codable, Sendable, Equatable {
    /// The checkpoint's file, or `untrained(seed N)`.
    public var editor: String
    public var repository: Repository
    public var worker: Worker
    public var jetstream: JetStream?
    public var refinement: Refinement?
    public var batch: Batch?
    public var promptStates: PromptStates?

    public init(editor: String, repository: Repository, worker: Worker, jetstream: JetStream?, refinement: Refinement?,
                batch: Batch?, promptStates: PromptStates?) {
        (self.editor, self.repository, self.worker, self.jetstream) = (editor, repository, worker, jetstream)
        (self.refinement, self.batch, self.promptStates) = (refinement, batch, promptStates)
    }

    enum CodingKeys: String, CodingKey {
        case editor, repository, worker, jetstream, refinement, batch
        case promptStates = "prompt_states"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(editor, forKey: .editor)
        try c.encode(repository, forKey: .repository)
        try c.encode(worker, forKey: .worker)
        try c.encodeOrNull(jetstream, forKey: .jetstream)
        try c.encodeOrNull(refinement, forKey: .refinement)
        try c.encodeOrNull(batch, forKey: .batch)
        try c.encodeOrNull(promptStates, forKey: .promptStates)
    }

    /// The knowledge repository.
    public struct Repository: Codable, Sendable, Equatable {
        public var liveFacts: Int, rows: Int, deadRows: Int
        public var timeStep: UInt64, generation: UInt64
        public var logRecords: UInt64, logBytes: Int
        public var keyDimension: Int, promptRows: Int, promptWidth: Int
        /// The fact encoder's fingerprint.
        public var fingerprint: String
        /// 8 hex digits, CRC-32C of the live facts in log order: equal on replicas holding
        /// the same content.
        public var contentFingerprint: String

        public init(liveFacts: Int, rows: Int, deadRows: Int, timeStep: UInt64, generation: UInt64, logRecords: UInt64, logBytes: Int,
                    keyDimension: Int, promptRows: Int, promptWidth: Int, fingerprint: String, contentFingerprint: String) {
            (self.liveFacts, self.rows, self.deadRows, self.timeStep, self.generation) = (liveFacts, rows, deadRows, timeStep, generation)
            (self.logRecords, self.logBytes, self.keyDimension, self.promptRows, self.promptWidth) = (logRecords, logBytes, keyDimension, promptRows, promptWidth)
            (self.fingerprint, self.contentFingerprint) = (fingerprint, contentFingerprint)
        }

        enum CodingKeys: String, CodingKey {
            case rows, generation, fingerprint
            case liveFacts = "live_facts", deadRows = "dead_rows", timeStep = "time_step", logRecords = "log_records"
            case logBytes = "log_bytes", keyDimension = "key_dimension", promptRows = "prompt_rows", promptWidth = "prompt_width"
            case contentFingerprint = "content_fingerprint"
        }
    }

    /// The JetStream stream source (Operations.md, "A fleet").
    public struct JetStream: Codable, Sendable, Equatable {
        public var stream: String, consumer: String
        public var connected: Bool
        /// The server connected to, the consumer's pending count (its lag) and the last
        /// error: nil until known.
        public var server: String?, pending: Int?, lastError: String?
        public var inFlight: Int, appliedThrough: Int, acknowledged: Int, terminated: Int, redeliveriesSkipped: Int, connections: Int

        public init(stream: String, consumer: String, connected: Bool, server: String?, pending: Int?, lastError: String?, inFlight: Int,
                    appliedThrough: Int, acknowledged: Int, terminated: Int, redeliveriesSkipped: Int, connections: Int) {
            (self.stream, self.consumer, self.connected, self.server, self.pending, self.lastError) = (stream, consumer, connected, server, pending, lastError)
            (self.inFlight, self.appliedThrough, self.acknowledged, self.terminated) = (inFlight, appliedThrough, acknowledged, terminated)
            (self.redeliveriesSkipped, self.connections) = (redeliveriesSkipped, connections)
        }

        enum CodingKeys: String, CodingKey {
            case stream, consumer, connected, server, pending, acknowledged, terminated, connections
            case lastError = "last_error", inFlight = "in_flight", appliedThrough = "applied_through"
            case redeliveriesSkipped = "redeliveries_skipped"
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(stream, forKey: .stream)
            try c.encode(consumer, forKey: .consumer)
            try c.encode(connected, forKey: .connected)
            try c.encodeOrNull(server, forKey: .server)
            try c.encodeOrNull(pending, forKey: .pending)
            try c.encodeOrNull(lastError, forKey: .lastError)
            try c.encode(inFlight, forKey: .inFlight)
            try c.encode(appliedThrough, forKey: .appliedThrough)
            try c.encode(acknowledged, forKey: .acknowledged)
            try c.encode(terminated, forKey: .terminated)
            try c.encode(redeliveriesSkipped, forKey: .redeliveriesSkipped)
            try c.encode(connections, forKey: .connections)
        }
    }

    /// Prompt refinement at ingestion: facts refined, Adam steps, facts whose prompt already
    /// met the stop loss.
    public struct Refinement: Codable, Sendable, Equatable {
        public var facts: Int, steps: Int, unchanged: Int
        public init(facts: Int, steps: Int, unchanged: Int) { (self.facts, self.steps, self.unchanged) = (facts, steps, unchanged) }
    }

    /// Continuous batching: answers generated together now, asks waiting, the largest batch
    /// so far, its bound (`limits.maxBatch`) and the decode steps.
    public struct Batch: Codable, Sendable, Equatable {
        public var running: Int, waiting: Int, largest: Int, max: Int, steps: Int
        public init(running: Int, waiting: Int, largest: Int, max: Int, steps: Int) {
            (self.running, self.waiting, self.largest, self.max, self.steps) = (running, waiting, largest, max, steps)
        }
    }

    /// The prompts' keys and values on disk (Operations.md, "Asking: prompt states on disk").
    public struct PromptStates: Codable, Sendable, Equatable {
        public var entries: Int, capacity: Int, hits: Int, misses: Int, stored: Int, errors: Int, skippedForSpace: Int

        public init(entries: Int, capacity: Int, hits: Int, misses: Int, stored: Int, errors: Int, skippedForSpace: Int) {
            (self.entries, self.capacity, self.hits, self.misses) = (entries, capacity, hits, misses)
            (self.stored, self.errors, self.skippedForSpace) = (stored, errors, skippedForSpace)
        }

        enum CodingKeys: String, CodingKey {
            case entries, capacity, hits, misses, stored, errors
            case skippedForSpace = "skipped_for_space"
        }
    }
}
