// `stats`, `health` and `metrics`: requests without fields (Protocol.md).
import Foundation

/// `stats`: counts of the repository, the worker and its parts.
public struct StatsRequest: WorkerRequest {
    public typealias Reply = StatsReply
    public static let op = Op.stats
    public var request: Request { .stats(self) }
    public init() {}
}

/// `health`: answered at once, even during a commit.
public struct HealthRequest: WorkerRequest {
    public typealias Reply = HealthReply
    public static let op = Op.health
    public var request: Request { .health(self) }
    public init() {}
}

/// `metrics`: the Prometheus text.
public struct MetricsRequest: WorkerRequest {
    public typealias Reply = MetricsReply
    public static let op = Op.metrics
    public var request: Request { .metrics(self) }
    public init() {}
}
