// Carrying a trained editor over to a more expressive layout of the same network, so that a
// training stage can start from it: today from the shared, fact-independent attention to
// `slotConditioning` (each slot's own value map, queries conditioned on the fact). The
// converted editor computes exactly the prompts the original did: every slot's map is a copy
// of the shared one and the new query map W_q is zero.
import Recipe

extension RecipeParameters {
    /// These parameters laid out for `config`. Tensors of equal shape are copied by name; the
    /// shared value map V [C, C] + v [C] is copied into every slot's V_j [P, C, C] + v_j
    /// [P, C]; a W_q the original did not have stays zero, and so does a query encoder layer
    /// (`QueryEncoder.initialize` copies the encoder's into it). `config` must describe the same
    /// network (widths, prompt length, statement tokens; training hyper-parameters may
    /// differ), and slot conditioning cannot be dropped (the slots' maps may have diverged).
    public func converted(to config: RecipeConfig) throws -> RecipeParameters {
        let from = self.config
        let structure: [(String, Int, Int)] = [
            ("feature width", from.featureWidth, config.featureWidth),
            ("representation width", from.representationWidth, config.representationWidth),
            ("prompt length", from.promptLength, config.promptLength),
            ("model width", from.modelWidth, config.modelWidth),
            ("statement tokens", from.statementTokens, config.statementTokens),
        ]
        for (what, a, b) in structure where a != b {
            throw RecipeError.invalidArgument("cannot convert an editor with \(what) \(a) to \(what) \(b)")
        }
        guard from.queryEncoderLayers <= config.queryEncoderLayers else {
            throw RecipeError.invalidArgument("cannot convert an editor with its own query encoder back to the frozen encoder")
        }
        guard !from.slotConditioning || config.slotConditioning else {
            throw RecipeError.invalidArgument("cannot convert a slot-conditioned editor back to a shared value map and fixed queries")
        }
        let out = RecipeParameters(config: config)
        for t in RecipeTensor.allCases {
            let src = self[t], dst = out[t]
            if t.shape(from) == t.shape(config) {
                _ = dst.update(fromContentsOf: src)
            } else if t == .promptValueW || t == .promptValueB {
                // shared → per slot: P copies, one per slot
                for j in 0..<config.promptLength {
                    _ = UnsafeMutableBufferPointer(rebasing: dst[(j * src.count)..<((j + 1) * src.count)]).update(fromContentsOf: src)
                }
            } else {
                precondition([.promptQueryW, .queryEncoder].contains(t) && src.isEmpty, "conversion of \(t.name) \(t.shape(from)) → \(t.shape(config)) is not defined")
            }
        }
        return out
    }
}
