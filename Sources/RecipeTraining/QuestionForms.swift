// Questions as people type them, made from CounterFact's cloze prompts: "Toko Yasuda plays
// the" → "What does Toko Yasuda play?". CounterFact names no relation, only ~215 prompt
// templates of ~30 Wikidata relations; each rule below matches words of a template with the
// subject cut out ("{} is located in the continent" → "continent") and gives one question
// for the relation, the subject put back in. The rules are tried in order (the specific
// before the general: "located in the country" before "country of" before "in"); a template
// that names no relation ("{}, the", "{} is a") gets none. On CounterFact train they give a
// question for 9,667 of 10,000 records, on dev for 1,861 of 1,919 (2026-12-07).
//
// Each rule also gives the relation's noun form, as a knowledge base labels it ("The place
// of birth of {} is"), and its index names the relation (`relation(prompt:subject:)`).
//
// Used for training data (questions and noun forms as further paraphrases, and as
// same-subject negatives of another relation) and by `recipe eval --questions` (the
// paraphrase replaced by the question). The answers stay CounterFact's.

public enum QuestionForms {
    /// (phrases, question, noun form; "{}" for the subject): the first rule one of whose
    /// phrases occurs as whole words in the template wins. The noun form names the relation
    /// as Wikidata's property labels do ("The place of birth of {} is"), a cloze phrasing
    /// common in knowledge-base text that CounterFact's templates seldom use.
    static let rules: [([String], String, String)] = [
        (["twin city"], "What is the twin city of {}?", "The twin city of {} is"),
        (["holds the position", "has the position", "position is that of", "holds the title"], "What position does {} hold?", "The position held by {} is"),
        (["position"], "What position does {} play?", "The playing position of {} is"),
        (["sport"], "What sport does {} play?", "The sport played by {} is"),
        (["instrument"], "What instrument does {} play?", "The instrument of {} is"),
        (["genre"], "What genre of music does {} play?", "The genre of {} is"),
        (["mother tongue", "native language", "native speaker", "a native"], "What is the native language of {}?", "The native language of {} is"),
        (["official language", "law in"], "What is the official language of {}?", "The official language of {} is"),
        (["original language"], "What is the original language of {}?", "The original language of {} is"),
        (["written in", "writes in", "wrote in"], "What language is {} written in?", "The language {} is written in is"),
        (["language used by"], "What language does {} use?", "The language used by {} is"),
        (["language of"], "What is the language of {}?", "The language of {} is"),
        (["speak", "speaks", "spoke", "speaker of", "understand", "language"], "What language does {} speak?", "The language spoken by {} is"),
        (["citizen", "citizenship"], "Which country is {} a citizen of?", "The country of citizenship of {} is"),
        (["continent"], "Which continent is {} in?", "The continent of {} is"),
        (["capital"], "What is the capital of {}?", "The capital of {} is"),
        (["headquarter", "headquarters", "headquartered", "based in"], "Where is {} headquartered?", "The headquarters location of {} is"),
        (["died", "passed away", "life ended", "expired at", "succumbed", "lost their life"], "Where did {} die?", "The place of death of {} is"),
        (["born"], "Where was {} born?", "The place of birth of {} is"),
        (["works for", "employed by"], "Who does {} work for?", "The employer of {} is"),
        (["area of", "domain of", "field of", "expertise", "specializes"], "What field does {} work in?", "The field of work of {} is"),
        (["work in", "worked in", "employment in", "employed in", "took up work"], "Which city did {} work in?", "The work location of {} is"),
        (["profession", "occupation", "works as", "professional"], "What is the profession of {}?", "The occupation of {} is"),
        (["religion", "follower of"], "What religion is {} affiliated with?", "The religion of {} is"),
        (["debuted", "debut", "premieres", "premiered", "aired on", "released on"], "Which network first aired {}?", "The original network of {} is"),
        (["owned by", "owner"], "Who owns {}?", "The owner of {} is"),
        (["created by", "developed by", "product of", "produced by", "manufactured by", "a product"], "Which company made {}?", "The manufacturer of {} is"),
        (["named after", "named for", "called after"], "Who is {} named after?", "The namesake of {} is"),
        (["record label", "music label", "label"], "Which record label is {} signed to?", "The record label of {} is"),
        (["located in the country"], "Which country is {} in?", "The country of {} is"),
        (["country of", "formulated in", "developed in", "started in"], "Which country does {} come from?", "The country of origin of {} is"),
        (["formed in", "founded in", "created in", "originated in", "originated"], "Where was {} founded?", "The place of formation of {} is"),
        (["plays", "play", "performs", "performing", "playing"], "What does {} play?", "The instrument played by {} is"),
        (["originates from", "originally from", "native to", "from"], "Where is {} from?", "The place of origin of {} is"),
        (["located in", "is in", "can be found in", "is within", "where is", "location of", "in"], "Where is {} located?", "The location of {} is"),
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
        guard !prompt.hasSuffix("?"), let t = PromptTemplate(prompt: prompt, subject: subject) else { return nil }
        let rest = (t.before + " " + t.after).lowercased()
        let words = rest.split(whereSeparator: { !($0 >= "a" && $0 <= "z") }).joined(separator: " ")
        let text = " " + words + " "
        return rules.firstIndex { phrases, _, _ in phrases.contains { text.contains(" " + $0 + " ") } }
    }

    /// The question of `relation` (an index from `relation(prompt:subject:)`) about `subject`.
    public static func question(relation: Int, subject: String) -> String {
        rules[relation].1.replacingOccurrences(of: "{}", with: subject)
    }

    /// Every relation index the rules know.
    public static var relations: Range<Int> { rules.indices }

    /// The noun form of `relation` about `subject` ("The place of birth of Toko Yasuda is").
    public static func nounForm(relation: Int, subject: String) -> String {
        rules[relation].2.replacingOccurrences(of: "{}", with: subject)
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
