// The editor as the repository's encoder (Storage's `FactEncoder` seam): statements →
// encoder features → knowledge keys and continuous prompts, in one batched pass per time
// step. The fingerprint binds a repository's matrices to the LLM, the encoder and the
// checkpoint, so changing any of them re-encodes the log at the next open.
import Models
import Posix
import Storage

public final class RecipeFactEncoder: FactEncoder, @unchecked Sendable {
    public let model: RecipeModel
    public let encoder: BertEncoder
    public let fingerprint: String

    /// - Parameters:
    ///   - modelFingerprints: fingerprints of the LLM and encoder files
    ///   - checkpointName: identifies the editor checkpoint (its fingerprint or "untrained(seed)")
    public init(model: RecipeModel, encoder: BertEncoder, modelFingerprints: RecipeCheckpoint.Fingerprints, checkpointName: String) {
        self.model = model
        self.encoder = encoder
        let params = model.parameters.all
        let paramsCRC = CRC32C.checksum(UnsafeRawBufferPointer(params))
        fingerprint = "llm=\(modelFingerprints.llm);encoder=\(modelFingerprints.encoder);editor=\(checkpointName);params=\(String(paramsCRC, radix: 16))"
    }

    public var keyDimension: Int { model.config.representationWidth }
    public var promptRows: Int { model.config.promptLength }
    public var promptWidth: Int { model.config.modelWidth }

    public func encode(_ statements: [String]) throws -> (keys: [Float], prompts: [Float]) {
        try model.encodeKnowledge(statements: statements, features: encoder.featureMatrix(statements))
    }

    /// Query keys [N, R] for N query texts.
    public func encodeQueries(_ queries: [String]) -> [Float] {
        model.encodeQueries(features: encoder.featureMatrix(queries), count: queries.count)
    }

    public func sentinel() -> (key: [Float], prompt: [Float]) {
        (model.sentinelKey, [Float](repeating: 0, count: promptRows * promptWidth))
    }
}
