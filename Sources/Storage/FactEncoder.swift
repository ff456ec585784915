// The seam between the repository and the model: whatever turns facts (their statements,
// and their question and target when they name them) into retrieval keys and continuous
// prompts. Batch-oriented: the repository calls `encode(facts:)` once per time step with
// every new fact of the step.

public protocol FactEncoder: Sendable {
    /// R: floats per retrieval key.
    var keyDimension: Int { get }
    /// P: prompt vectors per fact (3 in RECIPE).
    var promptRows: Int { get }
    /// C: floats per prompt vector (the LLM's embedding width, 576 for SmolLM2-135M).
    var promptWidth: Int { get }
    /// Names everything a fact's rows are made of (for the editor: the LLM, the encoder, the
    /// fact side of the checkpoint, the refinement options). The matrices are bound to it:
    /// when it changes, the repository re-encodes every live fact at open. The sentinel is
    /// not part of it: row 0 is rewritten at open whenever it differs from `sentinel()`.
    var fingerprint: String { get }
    /// keys: [N, R] row-major, prompts: [N, P*C] row-major, for N statements.
    func encode(_ statements: [String]) throws -> (keys: [Float], prompts: [Float])
    /// The same for N facts, which may also name their question and target; what the
    /// repository calls. The default encodes the statements alone.
    func encode(facts: [Fact]) throws -> (keys: [Float], prompts: [Float])
    /// The Knowledge Sentinel: key [R] and prompt [P*C], stored as row 0.
    func sentinel() -> (key: [Float], prompt: [Float])
}

extension FactEncoder {
    public func encode(facts: [Fact]) throws -> (keys: [Float], prompts: [Float]) {
        try encode(facts.map(\.statement))
    }

    /// P*C: floats per prompt matrix row.
    public var promptRowFloats: Int { promptRows * promptWidth }
}
