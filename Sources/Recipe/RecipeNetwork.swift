// The editor's networks on top of the frozen encoder features, forward and backward:
//
//   knowledge rep  r_k = head_k(f)   head = linear(F → R), residual ReLU(R)
//   query rep      r_q = head_q(f)
//   prompt         p   = linear(R → P·C)(residual ReLU(R)(r_k)) + attention,  viewed as [P, C]
//   attention      slot j: V (Σ_t a_jt e_t) + v,  a_j = softmax_t(e_t·u_j / √C + b_j[bucket(t)])
//                  over the LLM input embeddings e_t of the statement's last T tokens
//                  (`StatementTokens`), bucket(t) = min(distance from the end, 7); the value
//                  map V [C, C] (shared by the slots) starts as the identity
//   with `slotConditioning`: slot j: V_j (Σ_t a_jt e_t) + v_j (its own map, V [P, C, C]) and
//                  query u_j + (W_q x)_j (W_q [P·C, R], x = the residual ReLU's output), so
//                  where each slot looks depends on the fact; V_j = I, W_q = 0 at the start
//   sentinel       s   (a learned key, row 0 of the repository)
//
// The heads first scale each of the four F/4-wide feature blocks to unit L2 norm (a fixed,
// parameter-free step, this project's addition): the blocks have very different scales
// (max/min pools are large, the mean is small) and the mean block's direction is exactly
// the sentence embedding whose cosine already retrieves well.
//
// Shapes: features [N, F], reps [N, R], prompts [N, P·C].
import Foundation

/// What the head backward needs.
public struct HeadCache {
    public var features: [Float]   // [N, F] each block scaled to unit norm
    public var hidden: ResidualReLUCache
    /// [N, 4] each block's norm before the scaling
    var norms: [Float]
}

/// What the prompt-transformer backward needs.
public struct PromptCache {
    public var hidden: ResidualReLUCache
    public var mixed: [Float]      // [N, R] input of the output linear (and of the query map W_q)
    public var statements: StatementTokens?
    public var attention: [Float]  // [N, P, T] weights (empty without statements)
    public var pooled: [Float]     // [N·P, C] attention outputs before the value map
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
        normalizedWithNorms(features, N: N, F: F).features
    }

    /// `normalizedFeatures` and the blocks' norms [N, 4].
    static func normalizedWithNorms(_ features: [Float], N: Int, F: Int) -> (features: [Float], norms: [Float]) {
        var out = features, norms = [Float](repeating: 0, count: N * 4)
        let D = F / 4
        for row in 0..<N {
            for b in 0..<4 {
                let o = row * F + b * D
                var s: Float = 0
                for i in o..<(o + D) { s += out[i] * out[i] }
                norms[row * 4 + b] = s.squareRoot()
                let inv = s > 0 ? 1 / s.squareRoot() : 0
                for i in o..<(o + D) { out[i] *= inv }
            }
        }
        return (out, norms)
    }

    /// reps[N, R] from features[N, F].
    public static func headForward(_ params: RecipeParameters, _ head: RecipeHead, features raw: [Float], N: Int) -> (reps: [Float], cache: HeadCache) {
        let (l1, l2) = views(params, head: head)
        let (features, norms) = normalizedWithNorms(raw, N: N, F: params.config.featureWidth)
        let h = RecipeLayers.linearForward(features, l1, N: N)
        let (y, cache) = RecipeLayers.residualReLUForward(h, l2, N: N)
        return (y, HeadCache(features: features, hidden: cache, norms: norms))
    }

    /// Accumulates the head's weight gradients into `grads`; with `wantFeatures`, also
    /// returns the gradient of the raw features [N, F] (for a query encoder that trains):
    /// through each block's scaling y = f/‖f‖, df = (dy − y (y·dy)) / ‖f‖.
    @discardableResult
    public static func headBackward(_ params: RecipeParameters, _ grads: RecipeParameters, _ head: RecipeHead,
                                    dReps: [Float], cache: HeadCache, N: Int, wantFeatures: Bool = false) -> [Float]? {
        let (l1, l2) = views(params, head: head)
        let (g1, g2) = views(grads, head: head)
        let dh = RecipeLayers.residualReLUBackward(dReps, cache: cache.hidden, l2, grad: g2, N: N)
        guard var d = RecipeLayers.linearBackward(dh, x: cache.features, l1, grad: g1, N: N, wantInput: wantFeatures) else { return nil }
        let F = params.config.featureWidth, D = F / 4
        for row in 0..<N {
            for b in 0..<4 {
                let o = row * F + b * D, norm = cache.norms[row * 4 + b]
                guard norm > 0 else { for i in o..<(o + D) { d[i] = 0 }; continue }
                var yd: Float = 0
                for i in o..<(o + D) { yd += cache.features[i] * d[i] }
                for i in o..<(o + D) { d[i] = (d[i] - cache.features[i] * yd) / norm }
            }
        }
        return d
    }

    /// prompts[N, P·C] from knowledge reps[N, R] and, when the config's `statementTokens` > 0,
    /// the statements' token embeddings (required then).
    public static func promptForward(_ params: RecipeParameters, reps: [Float], statements: StatementTokens?,
                                     N: Int) -> (prompts: [Float], cache: PromptCache) {
        let c = params.config
        let (l1, l2) = promptViews(params)
        let (x, hidden) = RecipeLayers.residualReLUForward(reps, l1, N: N)
        var prompts = RecipeLayers.linearForward(x, l2, N: N)
        var attention: [Float] = [], pooled: [Float] = []
        let st = c.statementTokens > 0 ? statements : nil
        if let st {
            precondition(st.count == N && st.maxTokens == c.statementTokens && st.width == c.modelWidth,
                         "statement tokens do not match the batch or the config")
            let P = c.promptLength, T = st.maxTokens, C = st.width, buckets = RecipeConfig.positionBuckets
            let u = params[.promptQuery], bias = params[.promptPositionBias]
            let invSqrtC = 1 / Float(C).squareRoot()
            // [N, P·C] the fact-conditioned queries u + W_q x (u is the map's bias); empty
            // without slot conditioning, where every fact uses u itself.
            let queries = c.slotConditioning ? RecipeLayers.linearForward(x, queryView(params), N: N) : []
            attention = [Float](repeating: 0, count: N * P * T)
            pooled = [Float](repeating: 0, count: N * P * C)
            st.embeddings.withUnsafeBufferPointer { e in queries.withUnsafeBufferPointer { qs in
                for i in 0..<N {
                    let len = st.lengths[i]
                    guard len > 0 else { continue }
                    for j in 0..<P {
                        let q = qs.isEmpty ? UnsafePointer(u.baseAddress! + j * C) : qs.baseAddress! + (i * P + j) * C
                        var a = (0..<len).map { t -> Float in
                            let row = e.baseAddress! + (i * T + t) * C
                            var d: Float = 0
                            for k in 0..<C { d += row[k] * q[k] }
                            return d * invSqrtC + bias[j * buckets + min(len - 1 - t, buckets - 1)]
                        }
                        let m = a.max()!
                        var sum: Float = 0
                        for t in a.indices { a[t] = expf(a[t] - m); sum += a[t] }
                        let o = (i * P + j) * C
                        for t in a.indices {
                            let w = a[t] / sum
                            attention[(i * P + j) * T + t] = w
                            let row = e.baseAddress! + (i * T + t) * C
                            for k in 0..<C { pooled[o + k] += w * row[k] }
                        }
                    }
                }
            } }
        }
        if st != nil && c.slotConditioning {
            let P = c.promptLength, C = c.modelWidth
            for j in 0..<P {
                let values = RecipeLayers.linearForward(slotRows(pooled, j, N: N, P: P, C: C), valueView(params, slot: j), N: N)
                for i in 0..<N { for k in 0..<C { prompts[(i * P + j) * C + k] += values[i * C + k] } }
            }
        } else if st != nil {
            let values = RecipeLayers.linearForward(pooled, valueView(params), N: N * c.promptLength)
            for i in prompts.indices { prompts[i] += values[i] }
        }
        return (prompts, PromptCache(hidden: hidden, mixed: x, statements: st, attention: attention, pooled: pooled))
    }

    /// Accumulates the prompt transformer's gradients; returns dReps[N, R].
    public static func promptBackward(_ params: RecipeParameters, _ grads: RecipeParameters,
                                      dPrompts: [Float], cache: PromptCache, N: Int) -> [Float] {
        let c = params.config
        let (l1, l2) = promptViews(params)
        let (g1, g2) = promptViews(grads)
        var dQueryInput: [Float]?
        if let st = cache.statements {
            let P = c.promptLength, C = c.modelWidth
            var dPooled: [Float]
            if c.slotConditioning {
                dPooled = [Float](repeating: 0, count: N * P * C)
                for j in 0..<P {
                    let d = RecipeLayers.linearBackward(slotRows(dPrompts, j, N: N, P: P, C: C), x: slotRows(cache.pooled, j, N: N, P: P, C: C),
                                                        valueView(params, slot: j), grad: valueView(grads, slot: j), N: N, wantInput: true)!
                    for i in 0..<N { for k in 0..<C { dPooled[(i * P + j) * C + k] = d[i * C + k] } }
                }
            } else {
                dPooled = RecipeLayers.linearBackward(dPrompts, x: cache.pooled, valueView(params), grad: valueView(grads),
                                                      N: N * P, wantInput: true)!
            }
            dQueryInput = attentionBackward(params, grads, dPooled: dPooled, statements: st, attention: cache.attention,
                                            mixed: cache.mixed, N: N)
        }
        var dx = RecipeLayers.linearBackward(dPrompts, x: cache.mixed, l2, grad: g2, N: N, wantInput: true)!
        if let dQueryInput { for i in dx.indices { dx[i] += dQueryInput[i] } }
        return RecipeLayers.residualReLUBackward(dx, cache: cache.hidden, l1, grad: g1, N: N)
    }

    /// The value map of `slot`: its own block with slot conditioning, else the shared one.
    static func valueView(_ params: RecipeParameters, slot: Int = 0) -> LinearView {
        let C = params.config.modelWidth, s = params.config.slotConditioning ? slot : 0
        return LinearView(w: params.pointer(.promptValueW) + s * C * C, b: params.pointer(.promptValueB) + s * C, C: C, OC: C)
    }

    /// The fact-conditioned queries' map x[R] → u + W_q x [P·C] (slot conditioning only).
    static func queryView(_ params: RecipeParameters) -> LinearView {
        let c = params.config
        return LinearView(w: params.pointer(.promptQueryW), b: params.pointer(.promptQuery),
                          C: c.representationWidth, OC: c.promptLength * c.modelWidth)
    }

    /// Rows i·P + `slot` (i < N) of x [N·P, C], as [N, C].
    static func slotRows(_ x: [Float], _ slot: Int, N: Int, P: Int, C: Int) -> [Float] {
        var out = [Float](repeating: 0, count: N * C)
        for i in 0..<N { for k in 0..<C { out[i * C + k] = x[(i * P + slot) * C + k] } }
        return out
    }

    /// Gradients of the attention's query vectors and position biases (the token embeddings
    /// are the frozen LLM's): with g_t = dpooled_j·e_t, d score_t = a_t (g_t − Σ_s a_s g_s),
    /// d query_ij = Σ_t d score_t e_t / √C. With slot conditioning the queries are u + W_q x:
    /// also accumulates dW_q and returns dx [N, R] for the prompt transformer's hidden layer
    /// (`mixed`, x); nil without.
    static func attentionBackward(_ params: RecipeParameters, _ grads: RecipeParameters, dPooled dPrompts: [Float],
                                  statements st: StatementTokens, attention: [Float], mixed: [Float], N: Int) -> [Float]? {
        let P = params.config.promptLength, T = st.maxTokens, C = st.width, buckets = RecipeConfig.positionBuckets
        let du = grads[.promptQuery], db = grads[.promptPositionBias]
        let invSqrtC = 1 / Float(C).squareRoot()
        let conditioned = params.config.slotConditioning
        // [N, P·C] d queries (slot conditioning); without it they go straight into du.
        var dQueries = [Float](repeating: 0, count: conditioned ? N * P * C : 0)
        st.embeddings.withUnsafeBufferPointer { e in dQueries.withUnsafeMutableBufferPointer { dqs in
            for i in 0..<N {
                let len = st.lengths[i]
                for j in 0..<P where len > 0 {
                    let dp = (i * P + j) * C
                    let g = (0..<len).map { t -> Float in
                        let row = e.baseAddress! + (i * T + t) * C
                        var d: Float = 0
                        for k in 0..<C { d += dPrompts[dp + k] * row[k] }
                        return d
                    }
                    let a = (0..<len).map { attention[(i * P + j) * T + $0] }
                    let mean = zip(a, g).reduce(0) { $0 + $1.0 * $1.1 }
                    let dq = conditioned ? dqs.baseAddress! + (i * P + j) * C : du.baseAddress! + j * C
                    for t in 0..<len {
                        let ds = a[t] * (g[t] - mean)
                        db[j * buckets + min(len - 1 - t, buckets - 1)] += ds
                        let row = e.baseAddress! + (i * T + t) * C
                        for k in 0..<C { dq[k] += ds * invSqrtC * row[k] }
                    }
                }
            }
        } }
        guard conditioned else { return nil }
        return RecipeLayers.linearBackward(dQueries, x: mixed, queryView(params), grad: queryView(grads), N: N, wantInput: true)!
    }
}
