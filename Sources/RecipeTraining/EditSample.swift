// One editing test case in the shape RECIPE's evaluation uses: the edit request, its
// paraphrases (generality) and unrelated prompts whose answers must not change (locality).

/// A prompt with the answer expected after it.
public struct PromptTarget: Sendable, Equatable, Codable {
    public var prompt: String
    public var target: String
    public init(prompt: String, target: String) {
        self.prompt = prompt
        self.target = target
    }
}

public struct EditSample: Sendable, Equatable, Codable {
    /// The edit: after it, `request.prompt` should be answered with `request.target`.
    public var request: PromptTarget
    public var subject: String?
    /// The answer before the edit, when the dataset gives one.
    public var groundTruth: String?
    /// Paraphrases of the edit prompt with the new target (Generality).
    public var generality: [PromptTarget]
    /// Unrelated prompts with their original answer (Locality compares predictions before and after).
    public var locality: [PromptTarget]

    public init(request: PromptTarget, subject: String? = nil, groundTruth: String? = nil,
                generality: [PromptTarget] = [], locality: [PromptTarget] = []) {
        self.request = request
        self.subject = subject
        self.groundTruth = groundTruth
        self.generality = generality
        self.locality = locality
    }

    /// The knowledge statement the encoder sees: `prompt + " " + target`, with one space
    /// unless the prompt already ends with one or the target starts with one (as RECIPE's
    /// `edit_batch` joins them).
    public var statement: String { Self.statement(prompt: request.prompt, target: request.target) }

    public static func statement(prompt: String, target: String) -> String {
        if prompt.hasSuffix(" ") || target.hasPrefix(" ") || prompt.isEmpty { return prompt + target }
        return prompt + " " + target
    }
}

/// A prompt with its subject cut out ("{} plays the" from "Toko Yasuda plays the"): the text
/// before and after the subject's first occurrence. What the question rules read to find a
/// relation, and what training and the evaluation fill with another subject.
public struct PromptTemplate: Sendable, Equatable {
    public var before: Substring
    public var after: Substring

    /// Nil when the subject is missing, empty or not in the prompt.
    public init?(prompt: String, subject: String?) {
        guard let subject, !subject.isEmpty, let r = prompt.range(of: subject) else { return nil }
        before = prompt[..<r.lowerBound]
        after = prompt[r.upperBound...]
    }

    /// The prompt about `subject`.
    public func filled(with subject: String) -> String { before + subject + after }

    /// The template as text, "{}" for the subject.
    public var text: String { filled(with: "{}") }
}
