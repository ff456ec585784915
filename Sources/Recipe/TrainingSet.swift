// Training examples for the editor: each edit sample gives the knowledge statement, the
// edit query (reliability), a paraphrase (generality) and an unrelated query (locality),
// as the reference's CounterFact/zsRE meta-training data does.

public struct TrainingExample: Sendable, Equatable {
    public var statement: String
    public var reliability: PromptTarget
    public var generality: PromptTarget
    public var locality: PromptTarget
}

public struct TrainingSet: Sendable {
    public var examples: [TrainingExample]

    /// Uses every sample that has at least one paraphrase and one unrelated prompt; returns
    /// how many were skipped for lacking them.
    public init(samples: [EditSample]) {
        examples = samples.compactMap { s in
            guard let g = s.generality.first, let l = s.locality.first else { return nil }
            return TrainingExample(statement: s.statement, reliability: s.request, generality: g, locality: l)
        }
    }

    public var count: Int { examples.count }

    /// Every text whose encoder features training needs.
    public var texts: [String] {
        examples.flatMap { [$0.statement, $0.reliability.prompt, $0.generality.prompt, $0.locality.prompt] }
    }

    /// The example indices of training step `step` (0-based) with batch size `B`: epochs
    /// walk a permutation drawn from (seed, epoch), so the batch of any step is a pure
    /// function of (seed, step) and a resumed run sees exactly the batches it would have.
    public func batch(step: Int, size B: Int, seed: UInt64) -> [Int] {
        let N = count
        guard N > 0 else { return [] }
        var out: [Int] = []
        var position = step * B
        while out.count < min(B, N) {
            let epoch = position / N
            let perm = permutation(N, seed: seed &+ UInt64(epoch) &* 0x9E37_79B9)
            out.append(perm[position % N])
            position += 1
        }
        return out
    }

    private func permutation(_ n: Int, seed: UInt64) -> [Int] {
        var rng = SplitMix64(seed: seed)
        var p = Array(0..<n)
        for i in stride(from: n - 1, to: 0, by: -1) {
            let j = Int(rng.next() % UInt64(i + 1))
            p.swapAt(i, j)
        }
        return p
    }
}
