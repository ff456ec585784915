// This project's addition to RECIPE's retrieval: the question view. A query made of several
// sentences is also retrieved with its last sentence alone, and the better of the two
// retrievals is kept (the one whose best fact beats the Knowledge Sentinel by more).
//
// Why: a sentence embedding averages over every token, so context in front of a question
// ("Higgins is a member of the music staff at ENO. Francesco Balducci Pegolotti is native
// to") pulls the query away from the fact it asks about. CounterFact's paraphrases carry
// such a sentence in front of one in six prompts, and those are retrieved far less often
// than the rest (README "Training"). The last sentence is where a question is asked; the
// whole query stays a view of its own, so a split in the wrong place (an abbreviation's
// period) costs a second encoder pass, and its fragment is used only if it beats the
// sentinel by more than the whole query does.
public enum QuestionView {
    /// The last sentence of `query` when it has more than one, trimmed; nil for a query of
    /// one sentence. A sentence ends at `.`, `!`, `?` or `…`, after any closing quotes or
    /// brackets, followed by white space; a line break ends one too.
    public static func question(of query: String) -> String? {
        let scalars = Array(query.unicodeScalars)
        var end = scalars.count
        while end > 0, scalars[end - 1].properties.isWhitespace { end -= 1 }
        var start = 0
        for i in 0..<end where scalars[i].properties.isWhitespace {
            if scalars[i] == "\n" || scalars[i] == "\r" { start = i + 1; continue }
            var j = i - 1
            while j >= 0, closers.contains(scalars[j]) { j -= 1 }
            if j >= 0, terminators.contains(scalars[j]) { start = i + 1 }
        }
        while start < end, scalars[start].properties.isWhitespace { start += 1 }
        // A sentence must come before: a line break in front of the only one splits nothing.
        let first = scalars.firstIndex { !$0.properties.isWhitespace } ?? end
        guard start > first, start < end else { return nil }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars[start..<end])
        return String(view)
    }

    static let terminators: Set<Unicode.Scalar> = [".", "!", "?", "…"]
    static let closers: Set<Unicode.Scalar> = ["\"", "'", ")", "]", "»", "”", "’"]
}
