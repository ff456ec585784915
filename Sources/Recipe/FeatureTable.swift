// Encoder features of a set of texts, held in memory and looked up by text: what training's
// heads and the retrieval evaluation read (`FeatureCache` keeps them on disk; a query
// encoder makes them with `QueryEncoder.table`).

/// Features of a set of distinct texts.
public struct FeatureTable: Sendable {
    public let width: Int
    public let texts: [String]
    /// [texts.count, width]
    public let features: [Float]
    private let index: [String: Int]

    public init(width: Int, texts: [String], features: [Float]) {
        self.width = width
        self.texts = texts
        self.features = features
        var index: [String: Int] = [:]
        for (i, t) in texts.enumerated() { index[t] = i }
        self.index = index
    }

    public func row(_ text: String) -> Int? { index[text] }

    /// The features of `texts` stacked: [texts.count, width]. Every text must be in the table.
    public func gather(_ texts: [String]) -> [Float] {
        var out = [Float]()
        out.reserveCapacity(texts.count * width)
        for t in texts {
            let r = index[t]!
            out += features[(r * width)..<((r + 1) * width)]
        }
        return out
    }
}
