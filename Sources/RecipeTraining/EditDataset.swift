// Readers for the public editing benchmarks in `../shared/data` (see its README):
// CounterFact (RECIPE/EasyEdit), zsRE (MEND) and KnowEdit WikiData_recent. The format is
// recognised from the fields of the first record; every error names file, record and field.
// A malformed record does not stop the rest: it is returned in `rejected` with its reason.
import Foundation
import Recipe

/// The usable samples of a dataset file and the records that were set aside.
public struct LoadedEditDataset: Sendable {
    public var format: EditDatasetFormat
    public var samples: [EditSample]
    /// One `RecipeError.dataset` per malformed record, in file order.
    public var rejected: [RecipeError]
}

public enum EditDatasetFormat: String, Sendable, CaseIterable {
    case counterfact, zsre, wikiRecent = "wiki_recent"
}

public enum EditDataset {
    /// Reads a data source: `PATH` or `PATH@A:B`, the records with index A..<B (0-based, as in
    /// error messages; either bound may be left out: `@800:` is record 800 to the end), so
    /// that one file can be split into a training part and a held-out part.
    public static func load(source: String) throws -> LoadedEditDataset {
        guard let at = rangeMarker(source), let colon = source[at...].firstIndex(of: ":") else {
            return try load(URL(fileURLWithPath: source))
        }
        let path = String(source[..<at])
        let lower = source[source.index(after: at)..<colon], upper = source[source.index(after: colon)...]
        guard let a = lower.isEmpty ? 0 : Int(lower), let b = upper.isEmpty ? Int.max : Int(upper), a >= 0, a <= b else {
            throw RecipeError.dataset(file: path, record: nil, field: nil,
                                      reason: "bad record range '\(source[at...])' (expected @A:B with 0 ≤ A ≤ B)")
        }
        return try load(URL(fileURLWithPath: path), records: a..<b)
    }

    /// The file part of a data source (`PATH@A:B` → `PATH`).
    public static func filePath(source: String) -> String {
        rangeMarker(source).map { String(source[..<$0]) } ?? source
    }

    static func rangeMarker(_ source: String) -> String.Index? {
        guard let at = source.lastIndex(of: "@"), source[at...].contains(":") else { return nil }
        return at
    }

    /// Reads `url`, detecting the format unless `format` is given; only the records whose index
    /// is in `records` when given. Throws only when the file as a whole is unusable
    /// (unreadable, not JSON, not an array, unknown format).
    public static func load(_ url: URL, format: EditDatasetFormat? = nil, records selected: Range<Int>? = nil) throws -> LoadedEditDataset {
        let file = url.path
        guard let data = FileManager.default.contents(atPath: file) else {
            throw RecipeError.dataset(file: file, record: nil, field: nil, reason: "cannot read the file")
        }
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw RecipeError.dataset(file: file, record: nil, field: nil, reason: "not valid JSON (\(error.localizedDescription))")
        }
        guard let records = json as? [Any] else {
            throw RecipeError.dataset(file: file, record: nil, field: nil, reason: "expected a JSON array of records")
        }
        guard let first = records.first as? [String: Any] else {
            if records.isEmpty { return LoadedEditDataset(format: format ?? .counterfact, samples: [], rejected: []) }
            throw RecipeError.dataset(file: file, record: 0, field: nil, reason: "expected an object")
        }
        let kind = try format ?? detect(first, file: file)
        var loaded = LoadedEditDataset(format: kind, samples: [], rejected: [])
        loaded.samples.reserveCapacity(records.count)
        let range = selected.map { $0.clamped(to: 0..<records.count) } ?? 0..<records.count
        for index in range {
            let value = records[index]
            do {
                guard let r = value as? [String: Any] else {
                    throw RecipeError.dataset(file: file, record: index, field: nil, reason: "expected an object")
                }
                let reader = RecordReader(file: file, index: index, record: r)
                switch kind {
                case .counterfact: loaded.samples.append(try counterfact(reader))
                case .zsre: loaded.samples.append(try zsre(reader))
                case .wikiRecent: loaded.samples.append(try wikiRecent(reader))
                }
            } catch let e as RecipeError {
                loaded.rejected.append(e)
            }
        }
        return loaded
    }

    static func detect(_ r: [String: Any], file: String) throws -> EditDatasetFormat {
        if r["rephrase_prompt"] != nil || r["locality_prompt"] != nil { return .counterfact }
        if r["src"] != nil && r["alt"] != nil { return .zsre }
        if r["target_new"] != nil && r["locality"] is [String: Any] { return .wikiRecent }
        throw RecipeError.dataset(file: file, record: 0, field: nil,
                                  reason: "unknown format (fields: \(r.keys.sorted().joined(separator: ", "))); expected CounterFact, zsRE or WikiData_recent")
    }

    static func counterfact(_ r: RecordReader) throws -> EditSample {
        let target = try r.string("target_new")
        return EditSample(
            request: PromptTarget(prompt: try r.string("prompt"), target: target),
            subject: try r.optionalString("subject"),
            groundTruth: try r.optionalString("ground_truth"),
            generality: [PromptTarget(prompt: try r.string("rephrase_prompt"), target: target)],
            locality: [PromptTarget(prompt: try r.string("locality_prompt"), target: try r.string("locality_ground_truth"))]
        )
    }

    static func zsre(_ r: RecordReader) throws -> EditSample {
        let target = try r.string("alt")
        let answers = r.record["answers"] as? [String]
        return EditSample(
            request: PromptTarget(prompt: try r.string("src"), target: target),
            subject: try r.optionalString("subject"),
            groundTruth: answers?.first,
            generality: [PromptTarget(prompt: try r.string("rephrase"), target: target)],
            locality: [PromptTarget(prompt: try r.string("loc"), target: try r.string("loc_ans"))]
        )
    }

    /// WikiData_recent has no paraphrase; locality uses `Relation_Specificity` prompts with
    /// the first non-empty ground-truth alias (as RECIPE's ripple-effect reader does).
    static func wikiRecent(_ r: RecordReader) throws -> EditSample {
        var locality: [PromptTarget] = []
        if let loc = r.record["locality"] as? [String: Any], let rs = loc["Relation_Specificity"] {
            guard let items = rs as? [[String: Any]] else {
                throw r.error("locality.Relation_Specificity", "expected an array of objects")
            }
            for (i, item) in items.enumerated() {
                guard let prompt = item["prompt"] as? String else {
                    throw r.error("locality.Relation_Specificity[\(i)].prompt", "missing or not a string")
                }
                if let answer = firstAlias(item["ground_truth"]) {
                    locality.append(PromptTarget(prompt: prompt, target: answer))
                }
            }
        }
        return EditSample(
            request: PromptTarget(prompt: try r.string("prompt"), target: try r.string("target_new")),
            subject: try r.optionalString("subject"),
            generality: [],
            locality: locality
        )
    }

    /// The first non-empty string in a (possibly nested) list of aliases.
    static func firstAlias(_ value: Any?) -> String? {
        if let s = value as? String { return s.isEmpty ? nil : s }
        if let a = value as? [Any] {
            for v in a { if let s = firstAlias(v) { return s } }
        }
        return nil
    }
}

/// Typed access to one JSON record with errors that name file, record and field.
struct RecordReader {
    let file: String
    let index: Int
    let record: [String: Any]

    func error(_ field: String, _ reason: String) -> RecipeError {
        .dataset(file: file, record: index, field: field, reason: reason)
    }

    func string(_ key: String) throws -> String {
        guard let v = record[key] else { throw error(key, "missing") }
        guard let s = v as? String else { throw error(key, "expected a string") }
        guard !s.trimmingCharacters(in: .whitespaces).isEmpty else { throw error(key, "is empty") }
        return s
    }

    func optionalString(_ key: String) throws -> String? {
        guard let v = record[key], !(v is NSNull) else { return nil }
        guard let s = v as? String else { throw error(key, "expected a string") }
        return s
    }
}
