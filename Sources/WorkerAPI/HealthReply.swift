// The replies to `health` (answered at once, even during a commit) and `metrics` (the
// Prometheus text format in a string) (Protocol.md, "stats, health, metrics").
import Foundation

public struct HealthReply: Codable, Sendable, Equatable {
    /// `ok`, or `stopping` during shutdown.
    public var status: String
    public var timeStep: UInt64
    public var liveFacts: Int
    public var uptimeSeconds: Double

    public init(status: String, timeStep: UInt64, liveFacts: Int, uptimeSeconds: Double) {
        (self.status, self.timeStep, self.liveFacts, self.uptimeSeconds) = (status, timeStep, liveFacts, uptimeSeconds)
    }

    enum CodingKeys: String, CodingKey {
        case status
        case timeStep = "time_step", liveFacts = "live_facts", uptimeSeconds = "uptime_seconds"
    }
}

public struct MetricsReply: Codable, Sendable, Equatable {
    /// The Prometheus text exposition format (version 0.0.4).
    public var metrics: String

    public init(metrics: String) { self.metrics = metrics }
}
