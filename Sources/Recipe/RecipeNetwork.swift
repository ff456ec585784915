// The editor's networks on top of the frozen encoder features, forward and backward:
//
//   knowledge rep  r_k = head_k(f)   head = linear(F → R), residual ReLU(R)
//   query rep      r_q = head_q(f)
//   prompt         p   = linear(R → P·C)(residual ReLU(R)(r_k)),  viewed as [P, C]
//   sentinel       s   (a learned key, row 0 of the repository)
//
// The heads first scale each of the four F/4-wide feature blocks to unit L2 norm (a fixed,
// parameter-free step, this project's addition): the blocks have very different scales
// (max/min pools are large, the mean is small) and the mean block's direction is exactly
// the sentence embedding whose cosine already retrieves well.
//
// Shapes: features [N, F], reps [N, R], prompts [N, P·C].

/// What the head backward needs.
public struct HeadCache {
    public var features: [Float]   // [N, F]
    public var hidden: ResidualReLUCache
}

/// What the prompt-transformer backward needs.
public struct PromptCache {
    public var hidden: ResidualReLUCache
    public var mixed: [Float]      // [N, R] input of the output linear
}

public enum RecipeHead: Sendable { case knowledge, query }

public enum RecipeNetwork {
    static func views(_ params: RecipeParameters, head: RecipeHead) -> (LinearView, LinearView) {
        let c = params.config
        let (w1, b1, w2, b2): (RecipeTensor, RecipeTensor, RecipeTensor, RecipeTensor) = head == .knowledge
            ? (.knowledgeW1, .knowledgeB1, .knowledgeW2, .knowledgeB2)
            : (.queryW1, .queryB1, .queryW2, .queryB2)
        let R = c.representationWidth
        return (LinearView(w: params.pointer(w1), b: params.pointer(b1), C: c.featureWidth, OC: R),
                LinearView(w: params.pointer(w2), b: params.pointer(b2), C: R, OC: R))
    }

    static func promptViews(_ params: RecipeParameters) -> (LinearView, LinearView) {
        let c = params.config
        let R = c.representationWidth
        return (LinearView(w: params.pointer(.promptW1), b: params.pointer(.promptB1), C: R, OC: R),
                LinearView(w: params.pointer(.promptW2), b: params.pointer(.promptB2), C: R, OC: c.promptLength * c.modelWidth))
    }

    /// Each of the four blocks of every feature row scaled to unit L2 norm.
    public static func normalizedFeatures(_ features: [Float], N: Int, F: Int) -> [Float] {
        var out = features
        let D = F / 4
        for row in 0..<N {
            for b in 0..<4 {
                let o = row * F + b * D
                var s: Float = 0
                for i in o..<(o + D) { s += out[i] * out[i] }
                let inv = s > 0 ? 1 / s.squareRoot() : 0
                for i in o..<(o + D) { out[i] *= inv }
            }
        }
        return out
    }

    /// reps[N, R] from features[N, F].
    public static func headForward(_ params: RecipeParameters, _ head: RecipeHead, features raw: [Float], N: Int) -> (reps: [Float], cache: HeadCache) {
        let (l1, l2) = views(params, head: head)
        let features = normalizedFeatures(raw, N: N, F: params.config.featureWidth)
        let h = RecipeLayers.linearForward(features, l1, N: N)
        let (y, cache) = RecipeLayers.residualReLUForward(h, l2, N: N)
        return (y, HeadCache(features: features, hidden: cache))
    }

    /// Accumulates the head's weight gradients into `grads` (features are frozen).
    public static func headBackward(_ params: RecipeParameters, _ grads: RecipeParameters, _ head: RecipeHead,
                                    dReps: [Float], cache: HeadCache, N: Int) {
        let (l1, l2) = views(params, head: head)
        let (g1, g2) = views(grads, head: head)
        let dh = RecipeLayers.residualReLUBackward(dReps, cache: cache.hidden, l2, grad: g2, N: N)
        _ = RecipeLayers.linearBackward(dh, x: cache.features, l1, grad: g1, N: N, wantInput: false)
    }

    /// prompts[N, P·C] from knowledge reps[N, R].
    public static func promptForward(_ params: RecipeParameters, reps: [Float], N: Int) -> (prompts: [Float], cache: PromptCache) {
        let (l1, l2) = promptViews(params)
        let (x, hidden) = RecipeLayers.residualReLUForward(reps, l1, N: N)
        return (RecipeLayers.linearForward(x, l2, N: N), PromptCache(hidden: hidden, mixed: x))
    }

    /// Accumulates the prompt transformer's gradients; returns dReps[N, R].
    public static func promptBackward(_ params: RecipeParameters, _ grads: RecipeParameters,
                                      dPrompts: [Float], cache: PromptCache, N: Int) -> [Float] {
        let (l1, l2) = promptViews(params)
        let (g1, g2) = promptViews(grads)
        let dx = RecipeLayers.linearBackward(dPrompts, x: cache.mixed, l2, grad: g2, N: N, wantInput: true)!
        return RecipeLayers.residualReLUBackward(dx, cache: cache.hidden, l1, grad: g1, N: N)
    }
}
