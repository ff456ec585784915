// What each editing method puts in front of a query: the one decision the worker's `ask`
// and the evaluation share (`Injection.init(_:fact:)`).
//
//   none       nothing: the unedited model
//   incontext  the same retrieval as recipe, but the retrieved statement as plain text
//              in front of the query (`InContextTemplate`)
//   oracle     the continuous prompt of the correct fact, always (no retrieval): separates
//              retrieval errors from prompt errors
//   recipe     retrieval with the Knowledge Sentinel, then the fact's continuous prompt
import Foundation
import Models
import Tokenizers

public enum EditMethod: String, Sendable, CaseIterable, Codable {
    case none, incontext, oracle, recipe
    /// RECIPE's prompt and, after it, the retrieved statement as text (the in-context
    /// template): the prompt carries the fact, the text gives the words to copy.
    case recipeText = "recipe+text"
}

/// What a method puts in front of a query.
public enum Injection: Sendable, Equatable {
    case nothing
    /// Continuous prompt rows [P, C], prepended to the token embeddings.
    case prompt([Float])
    /// Text prepended to the query (tokenized separately, then the query's tokens).
    case text(String)
    /// Continuous prompt rows [P, C], then text, then the query's tokens.
    case promptAndText([Float], String)
}

extension Injection {
    /// What `method` puts in front of a query that uses `fact` (its prompt as stored and its
    /// statement; nil when the sentinel won or the method retrieves nothing). The one
    /// decision for the worker's `ask` and for the evaluation.
    public init(_ method: EditMethod, fact: (prompt: [Float], statement: String)?) {
        guard let fact else { self = .nothing; return }
        switch method {
        case .none: self = .nothing
        case .recipe, .oracle: self = .prompt(fact.prompt)
        case .incontext: self = .text(InContextTemplate.prefix(statement: fact.statement))
        case .recipeText: self = .promptAndText(fact.prompt, InContextTemplate.prefix(statement: fact.statement))
        }
    }

    /// Whether a continuous prompt is in front (the hand-off applies).
    public var hasPrompt: Bool {
        switch self {
        case .prompt, .promptAndText: return true
        case .nothing, .text: return false
        }
    }

    /// This injection for `question` read as a chat turn (`chat`): an in-context method's
    /// statement goes inside the user's message, as a labelled fact before the question
    /// (`chatMessage`), where an instruct model reads what it is told (in front of the
    /// template it would stand before the system turn, where the model does not take it as
    /// part of the conversation); a continuous prompt stays in front of everything. Without
    /// chat, or without text, nothing moves. The worker's `ask` and the evaluation both
    /// place it here.
    public func placed(in question: String, chat: Bool) -> (injection: Injection, question: String) {
        guard chat else { return (self, question) }
        switch self {
        case let .text(t): return (.nothing, Self.chatMessage(statement: t, question: question))
        case let .promptAndText(p, t): return (.prompt(p), Self.chatMessage(statement: t, question: question))
        case .nothing, .prompt: return (self, question)
        }
    }

    /// The user's message of a chat ask that carries a statement (`InContextTemplate`'s
    /// line): "Fact: Zuni Indian Reservation is located in Estonia.\nQuestion: Where is the
    /// Zuni Indian Reservation?". Chosen among five wordings on zsRE training records
    /// (docs/engineering-log.md, 2026-12-08): the labels make the instruct model answer from
    /// the fact more often than the statement and the question alone.
    public static func chatMessage(statement line: String, question: String) -> String {
        "Fact: " + line + "Question: " + question
    }

    /// The model input for query `tokens` with this injection in front, and how many input
    /// rows come before the query's first token.
    public func sequence(_ tokens: [Int], tokenizer: BPETokenizer, width C: Int) -> (sequence: LlamaSequence, shift: Int) {
        switch self {
        case .nothing:
            return (LlamaSequence(tokens: tokens), 0)
        case let .prompt(p):
            return (LlamaSequence(tokens: tokens, prefix: p), p.count / C)
        case let .text(t):
            let pre = tokenizer.encode(t)
            return (LlamaSequence(tokens: pre + tokens), pre.count)
        case let .promptAndText(p, t):
            let pre = tokenizer.encode(t)
            return (LlamaSequence(tokens: pre + tokens, prefix: p), p.count / C + pre.count)
        }
    }
}

/// The in-context baseline's template: the retrieved statement, a full stop, a newline,
/// then the query. Short and model-agnostic; a raw-completion model reads it as a fact
/// stated just before the sentence it has to complete.
public enum InContextTemplate {
    public static func prefix(statement: String) -> String {
        let s = statement.trimmingCharacters(in: .whitespaces)
        return (s.hasSuffix(".") ? s : s + ".") + "\n"
    }
}
