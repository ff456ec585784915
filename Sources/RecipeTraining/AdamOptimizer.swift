// Adam (Kingma & Ba) over the flat parameter buffer, with a global gradient-norm clip and
// one learning rate for the heads/sentinel and one for the prompt transformer, as the
// reference's two parameter groups. State (moments, step) is part of training checkpoints
// so a resumed run continues exactly.
import Recipe

public final class AdamOptimizer: @unchecked Sendable {
    public let beta1: Float
    public let beta2: Float
    public let epsilon: Float
    /// First and second moments, same layout as the parameters.
    public let m: RecipeParameters
    public let v: RecipeParameters
    public private(set) var step: Int = 0

    public init(config: RecipeConfig, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        m = RecipeParameters(config: config)
        v = RecipeParameters(config: config)
    }

    /// Restores a saved state.
    public func restore(step: Int, m: [Float], v: [Float]) throws {
        guard m.count == self.m.count, v.count == self.v.count else {
            throw RecipeError.invalidArgument("optimizer state has \(m.count)/\(v.count) values, expected \(self.m.count)")
        }
        self.step = step
        for i in 0..<m.count { self.m.base[i] = m[i]; self.v.base[i] = v[i] }
    }

    /// The global L2 norm of `grads`.
    public static func norm(_ grads: RecipeParameters) -> Float {
        var s: Double = 0
        for g in grads.all { s += Double(g) * Double(g) }
        return Float(s.squareRoot())
    }

    /// One update of `params` from `grads`, clipping the global norm to `clip` first; the
    /// `frozen` tensors are left as they are. Returns the gradient norm before clipping.
    @discardableResult
    public func update(_ params: RecipeParameters, _ grads: RecipeParameters,
                       headLearningRate: Float, promptLearningRate: Float, encoderLearningRate: Float = 0, clip: Float,
                       frozen: (RecipeTensor) -> Bool = { _ in false }) -> Float {
        let norm = Self.norm(grads)
        let scale: Float = norm > clip && norm > 0 ? clip / norm : 1
        step += 1
        let c1 = 1 - Float(Double(beta1).power(step))
        let c2 = 1 - Float(Double(beta2).power(step))
        for t in RecipeTensor.allCases where !frozen(t) {
            let lr = t == .queryEncoder ? encoderLearningRate : t.isPromptTransformer ? promptLearningRate : headLearningRate
            for i in params.range(t) {
                let g = grads.base[i] * scale
                m.base[i] = beta1 * m.base[i] + (1 - beta1) * g
                v.base[i] = beta2 * v.base[i] + (1 - beta2) * g * g
                let mHat = m.base[i] / c1, vHat = v.base[i] / c2
                params.base[i] -= lr * mHat / (vHat.squareRoot() + epsilon)
            }
        }
        return norm
    }
}

extension Double {
    fileprivate func power(_ n: Int) -> Double {
        var r = 1.0, b = self, e = n
        while e > 0 {
            if e & 1 == 1 { r *= b }
            b *= b
            e >>= 1
        }
        return r
    }
}
