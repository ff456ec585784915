// `stats`'s `worker` section: the worker's counters since it started (requests and errors by
// kind, connections, facts, time steps, asks, tokens, prompt cache, torn log tails).
import Foundation

extension StatsReply {
    public struct Worker: Codable, Sendable, Equatable {
        /// Requests by op (`invalid`: no usable op; `unknown`: an op not in the protocol) and
        /// error replies by code.
        public var requests: [String: Int], errors: [String: Int]
        public var connectionsOpen = 0, connectionsTotal = 0, connectionsRefused = 0, connectionsShed = 0, connectionsRevoked = 0
        public var asksAbandoned = 0
        public var factsStored = 0, factsDuplicate = 0, factsRejected = 0
        public var timeSteps = 0, commitFailures = 0
        public var asks = 0, tokensGenerated = 0
        public var promptCacheHits = 0, promptCacheMisses = 0
        /// Torn fact-log tails cut at open (kept in torn/) and their bytes.
        public var tornTails = 0, tornTailBytes = 0
        public var uptimeSeconds = 0.0

        public init(requests: [String: Int] = [:], errors: [String: Int] = [:]) {
            self.requests = requests
            self.errors = errors
        }

        enum CodingKeys: String, CodingKey {
            case requests, errors, asks
            case connectionsOpen = "connections_open", connectionsTotal = "connections_total", connectionsRefused = "connections_refused"
            case connectionsShed = "connections_shed", connectionsRevoked = "connections_revoked", asksAbandoned = "asks_abandoned"
            case factsStored = "facts_stored", factsDuplicate = "facts_duplicate", factsRejected = "facts_rejected"
            case timeSteps = "time_steps", commitFailures = "commit_failures", tokensGenerated = "tokens_generated"
            case promptCacheHits = "prompt_cache_hits", promptCacheMisses = "prompt_cache_misses"
            case tornTails = "torn_tails", tornTailBytes = "torn_tail_bytes", uptimeSeconds = "uptime_seconds"
        }
    }
}
