// The editor as the repository's encoder (Storage's `FactEncoder` seam): statements →
// encoder features → knowledge keys and continuous prompts, in one batched pass per time
// step, then the prompt refinement of the facts that name a question and a target
// (`PromptRefiner`). The fingerprint binds a repository's matrices to what their rows are
// made of: the LLM, the encoder, the editor's fact side (`factsChecksum`) and the
// refinement options, so changing any of them re-encodes the log at the next open. It
// does not name the checkpoint's file or its query side: an editor whose query head,
// query encoder layer or sentinel changed (a retrained stage 3) keeps every row, and the
// repository rewrites row 0, the sentinel, at open (`Repository.repairSentinel`).
import Models
import Posix
import Storage

public final class RecipeFactEncoder: FactEncoder, @unchecked Sendable {
    public let model: RecipeModel
    public let encoder: BertEncoder
    public let fingerprint: String
    /// Fingerprints of the LLM and encoder files the editor runs with.
    public let modelFingerprints: RecipeCheckpoint.Fingerprints
    /// Refines the prompt of each fact that names its question and target; nil: none is.
    public let refiner: PromptRefiner?
    /// Encodes queries (through the editor's own top encoder layer when it has one).
    public let queryEncoder: QueryEncoder

    /// - Parameters:
    ///   - modelFingerprints: fingerprints of the LLM and encoder files
    ///   - refiner: prompt refinement, part of the fingerprint (its prompts differ)
    /// Throws when the editor's query encoder layer does not fit `encoder`.
    public init(model: RecipeModel, encoder: BertEncoder, modelFingerprints: RecipeCheckpoint.Fingerprints,
                refiner: PromptRefiner? = nil) throws {
        self.model = model
        self.encoder = encoder
        queryEncoder = try QueryEncoder(encoder: encoder, parameters: model.parameters)
        self.refiner = refiner
        self.modelFingerprints = modelFingerprints
        fingerprint = "llm=\(modelFingerprints.llm);encoder=\(modelFingerprints.encoder);facts=\(String(Self.factsChecksum(model), radix: 16))"
            + (refiner.map { ";refine=\($0.options.fingerprint)" } ?? "")
    }

    /// CRC-32C of what the editor makes a fact's key and prompt from: the values of the
    /// tensors that shape facts (`RecipeTensor.shapesFacts`) and the settings that shape
    /// them (widths, statement tokens, slot conditioning, the leading token the refinement
    /// runs behind). Training settings and the query side are left out on purpose.
    static func factsChecksum(_ model: RecipeModel) -> UInt32 {
        let c = model.config
        let settings = "F=\(c.featureWidth) R=\(c.representationWidth) P=\(c.promptLength) C=\(c.modelWidth) "
            + "tokens=\(c.statementTokens) slots=\(c.slotConditioning) leading=\(c.leadingToken.map(String.init) ?? "none")"
        var crc = CRC32C.checksum(Array(settings.utf8))
        for t in RecipeTensor.allCases where t.shapesFacts {
            crc = CRC32C.checksum(UnsafeRawBufferPointer(model.parameters[t]), continuing: crc)
        }
        return crc
    }

    public var keyDimension: Int { model.config.representationWidth }
    public var promptRows: Int { model.config.promptLength }
    public var promptWidth: Int { model.config.modelWidth }

    public func encode(_ statements: [String]) throws -> (keys: [Float], prompts: [Float]) {
        try model.encodeKnowledge(statements: statements, features: encoder.featureMatrix(statements))
    }

    /// `encode` of the statements, then the refinement of the prompts of the facts that
    /// name a question (`prompt`) and a `target` (and, when the refiner's options say so,
    /// of bare statements).
    public func encode(facts: [Fact]) throws -> (keys: [Float], prompts: [Float]) {
        var (keys, prompts) = try encode(facts.map(\.statement))
        if let refiner {
            try refiner.refine(&prompts, rowFloats: promptRowFloats, leading: model.prefix([]),
                               requests: facts.map { refiner.request(statement: $0.statement, question: $0.prompt, target: $0.target) })
        }
        return (keys, prompts)
    }

    /// Query keys [N, R] for N query texts.
    public func encodeQueries(_ queries: [String]) -> [Float] {
        model.encodeQueries(features: queryEncoder.features(queries), count: queries.count)
    }

    public func sentinel() -> (key: [Float], prompt: [Float]) {
        (model.sentinelKey, [Float](repeating: 0, count: promptRows * promptWidth))
    }
}
