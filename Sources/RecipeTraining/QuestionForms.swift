// Questions as people type them, made from CounterFact's cloze prompts: "Toko Yasuda plays
// the" → "What does Toko Yasuda play?". CounterFact names no relation, only ~215 prompt
// templates of ~30 Wikidata relations; each rule below matches words of a template with the
// subject cut out ("{} is located in the continent" → "continent") and gives one question
// for the relation, the subject put back in. The rules are tried in order (the specific
// before the general: "located in the country" before "country of" before "in"); a template
// that names no relation ("{}, the", "{} is a") gets none. On CounterFact train they give a
// question for 9,667 of 10,000 records, on dev for 1,861 of 1,919 (2026-12-07).
//
// Used for training data (questions as further paraphrases) and by `recipe eval
// --questions` (the paraphrase replaced by the question). The answers stay CounterFact's.

public enum QuestionForms {
    /// (phrases, question with "{}" for the subject): the first rule one of whose phrases
    /// occurs as whole words in the template wins.
    static let rules: [([String], String)] = [
        (["twin city"], "What is the twin city of {}?"),
        (["holds the position", "has the position", "position is that of", "holds the title"], "What position does {} hold?"),
        (["position"], "What position does {} play?"),
        (["sport"], "What sport does {} play?"),
        (["instrument"], "What instrument does {} play?"),
        (["genre"], "What genre of music does {} play?"),
        (["mother tongue", "native language", "native speaker", "a native"], "What is the native language of {}?"),
        (["official language", "law in"], "What is the official language of {}?"),
        (["original language"], "What is the original language of {}?"),
        (["written in", "writes in", "wrote in"], "What language is {} written in?"),
        (["language used by"], "What language does {} use?"),
        (["language of"], "What is the language of {}?"),
        (["speak", "speaks", "spoke", "speaker of", "understand", "language"], "What language does {} speak?"),
        (["citizen", "citizenship"], "Which country is {} a citizen of?"),
        (["continent"], "Which continent is {} in?"),
        (["capital"], "What is the capital of {}?"),
        (["headquarter", "headquarters", "headquartered", "based in"], "Where is {} headquartered?"),
        (["died", "passed away", "life ended", "expired at", "succumbed", "lost their life"], "Where did {} die?"),
        (["born"], "Where was {} born?"),
        (["works for", "employed by"], "Who does {} work for?"),
        (["area of", "domain of", "field of", "expertise", "specializes"], "What field does {} work in?"),
        (["work in", "worked in", "employment in", "employed in", "took up work"], "Which city did {} work in?"),
        (["profession", "occupation", "works as", "professional"], "What is the profession of {}?"),
        (["religion", "follower of"], "What religion is {} affiliated with?"),
        (["debuted", "debut", "premieres", "premiered", "aired on", "released on"], "Which network first aired {}?"),
        (["owned by", "owner"], "Who owns {}?"),
        (["created by", "developed by", "product of", "produced by", "manufactured by", "a product"], "Which company made {}?"),
        (["named after", "named for", "called after"], "Who is {} named after?"),
        (["record label", "music label", "label"], "Which record label is {} signed to?"),
        (["located in the country"], "Which country is {} in?"),
        (["country of", "formulated in", "developed in", "started in"], "Which country does {} come from?"),
        (["formed in", "founded in", "created in", "originated in", "originated"], "Where was {} founded?"),
        (["plays", "play", "performs", "performing", "playing"], "What does {} play?"),
        (["originates from", "originally from", "native to", "from"], "Where is {} from?"),
        (["located in", "is in", "can be found in", "is within", "where is", "location of", "in"], "Where is {} located?"),
    ]

    /// The question for cloze `prompt` about `subject`; nil when the prompt is a question
    /// already (zsRE's), does not name the subject, or no rule knows its relation.
    public static func question(prompt: String, subject: String?) -> String? {
        guard let subject, let r = relation(prompt: prompt, subject: subject) else { return nil }
        return question(relation: r, subject: subject)
    }

    /// The relation of cloze `prompt` about `subject`: the index of the rule that knows it
    /// (two prompts with the same index ask the same relation); nil as for `question`.
    public static func relation(prompt: String, subject: String?) -> Int? {
        guard !prompt.hasSuffix("?"), let subject, !subject.isEmpty, let r = prompt.range(of: subject) else { return nil }
        let rest = (prompt[..<r.lowerBound] + " " + prompt[r.upperBound...]).lowercased()
        let words = rest.split(whereSeparator: { !($0 >= "a" && $0 <= "z") }).joined(separator: " ")
        let text = " " + words + " "
        return rules.firstIndex { phrases, _ in phrases.contains { text.contains(" " + $0 + " ") } }
    }

    /// The question of `relation` (an index from `relation(prompt:subject:)`) about `subject`.
    public static func question(relation: Int, subject: String) -> String {
        rules[relation].1.replacingOccurrences(of: "{}", with: subject)
    }

    /// `sample` asked as a question: its paraphrase replaced by the question form of its
    /// edit prompt (same target); nil when there is none.
    public static func asQuestion(_ sample: EditSample) -> EditSample? {
        guard let q = question(prompt: sample.request.prompt, subject: sample.subject) else { return nil }
        var s = sample
        s.generality = [PromptTarget(prompt: q, target: sample.request.target)]
        return s
    }
}
