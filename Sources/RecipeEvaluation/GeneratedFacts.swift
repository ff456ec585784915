// More loaded facts than the data has: the public benchmarks hold ~12,000 facts, and a
// repository among 10^5 must still be measured. `recipe eval --distractor-count N` loads
// the distractor file's facts and then facts recombined from them.
import Posix
import RecipeTraining

public enum GeneratedFacts {
    /// `samples` followed by facts recombined from them until there are `count` in all:
    /// each names one sample's subject in another sample's prompt template (the prompt with
    /// its subject cut out, "{} is located in") and answers with a target that template has
    /// in the data ("Queen Maud Land is located in Gdańsk"). Templates are drawn as often as
    /// the data uses them; subjects uniformly. Every prompt occurs once (the data's own
    /// included), and the same seed gives the same facts. Fewer than `count` come back only
    /// when the data cannot make that many distinct prompts (or names no subject in a prompt).
    public static func recombined(_ samples: [EditSample], count: Int, seed: UInt64) -> [EditSample] {
        guard count > samples.count else { return Array(samples.prefix(count)) }
        var templates: [PromptTemplate] = []
        var targets: [String: [String]] = [:]
        var subjects: [String] = [], seenSubjects = Set<String>()
        for s in samples {
            guard let subject = s.subject, let t = PromptTemplate(prompt: s.request.prompt, subject: subject) else { continue }
            templates.append(t)
            let key = t.text
            if !(targets[key]?.contains(s.request.target) ?? false) { targets[key, default: []].append(s.request.target) }
            if seenSubjects.insert(subject).inserted { subjects.append(subject) }
        }
        var out = samples
        guard !templates.isEmpty else { return out }
        var prompts = Set(samples.map(\.request.prompt))
        var rng = SplitMix64(seed: seed ^ 0x6E0E_5A7E_D0FA_C751)
        var misses = 0
        while out.count < count && misses < 100 * count {
            let subject = subjects[Int(rng.next() % UInt64(subjects.count))]
            let t = templates[Int(rng.next() % UInt64(templates.count))]
            let prompt = t.filled(with: subject)
            guard prompts.insert(prompt).inserted, let answers = targets[t.text] else { misses += 1; continue }
            let target = answers[Int(rng.next() % UInt64(answers.count))]
            out.append(EditSample(request: PromptTarget(prompt: prompt, target: target), subject: subject, generality: [], locality: []))
        }
        return out
    }
}
