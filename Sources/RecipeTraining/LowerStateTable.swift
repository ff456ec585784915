// The frozen encoder's states below the editor's own query encoder layer, for every query
// text of a training set: they do not change while that layer trains, so they are computed
// once and each step runs only the top layer (`QueryEncoder.forward`/`backward`).
import Models
import Recipe

/// The states below the editor's encoder layer for a set of texts, computed once.
public struct LowerStateTable: Sendable {
    public let width: Int
    private let values: [Float]
    /// start row of each text, then the total
    private let rows: [Int]
    private let index: [String: Int]

    /// Computes them in batches of `batch`, reporting `progress(done, total)`.
    public init(texts allTexts: [String], queryEncoder: QueryEncoder, batch: Int = 256, progress: (Int, Int) -> Void = { _, _ in }) {
        var seen = Set<String>()
        let texts = allTexts.filter { seen.insert($0).inserted }
        var values: [Float] = [], rows = [0]
        var done = 0
        while done < texts.count {
            let chunk = Array(texts[done..<min(texts.count, done + batch)])
            let h = queryEncoder.encoder.hiddenStates(chunk, layers: queryEncoder.lowerLayers)
            values += h.values
            for b in 0..<h.count { rows.append(rows.last! + h.offsets[b + 1] - h.offsets[b]) }
            done += chunk.count
            progress(done, texts.count)
        }
        width = queryEncoder.encoder.width
        self.values = values
        self.rows = rows
        var index: [String: Int] = [:]
        for (i, t) in texts.enumerated() { index[t] = i }
        self.index = index
    }

    /// The states of `texts` stacked as one batch. Every text must be in the table.
    public func gather(_ texts: [String]) -> BertHiddenStates {
        var out: [Float] = [], offsets = [0]
        for t in texts {
            let i = index[t]!
            out += values[(rows[i] * width)..<(rows[i + 1] * width)]
            offsets.append(offsets.last! + rows[i + 1] - rows[i])
        }
        return BertHiddenStates(values: out, offsets: offsets, width: width)
    }
}
