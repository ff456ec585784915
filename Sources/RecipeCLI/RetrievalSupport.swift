// What `recipe train` and `recipe eval --retrieval` share: encoder features through the
// on-disk cache, and the retrieval report (all of a set's facts loaded at once).
import Foundation
import Models
import Recipe
import RecipeEvaluation
import RecipeTraining

/// Encoder features of `texts` from the cache next to the models directory (computed and
/// stored on a miss), with a progress bar labelled `label`.
func cachedFeatures(_ texts: [String], label: String, encoder: BertEncoder, fingerprint: String) throws -> FeatureTable {
    let cacheDir = ModelPaths.defaultDirectory().deletingLastPathComponent().appendingPathComponent("features")
    return try FeatureCache.table(texts: texts, width: encoder.featureCount, encoderFingerprint: fingerprint, directory: cacheDir,
                                  progress: ProgressBar.reporter(label), encode: { encoder.features($0) })
}

/// For an editor with its own query encoder (`QueryEncoder`), its features of `set`'s query
/// texts as its weights are now (computed, not cached: they change as it trains); nil for
/// one without, whose queries take the cached features.
func queryFeatures(_ set: TrainingSet?, encoder: QueryEncoder, label: String) -> FeatureTable? {
    guard let set, encoder.isFineTuned else { return nil }
    return encoder.table(set.queryTexts, progress: ProgressBar.reporter(label))
}

extension RetrievalReport {
    /// The report as a JSON object (snake_case keys).
    var json: [String: Any] {
        ["facts": facts, "edit": editAccuracy, "paraphrase": paraphraseAccuracy, "edit_top1": editTop1,
         "paraphrase_top1": paraphraseTop1, "false_retrieval": falseRetrievalRate,
         "false_retrieval_same_question": falseRetrievalSameQuestion, "matched_false_rate": matchedFalseRate,
         "edit_at_matched_false": editAtMatchedFalseRate, "paraphrase_at_matched_false": paraphraseAtMatchedFalseRate]
    }

    /// Two lines for people.
    var text: String {
        String(format: """
            retrieval on %d facts: edit %.1f%% (top-1 %.1f%%), paraphrase %.1f%% (top-1 %.1f%%), false retrieval %.1f%% \
            (%.1f%% ask the retrieved fact's own question)
              with the sentinel recalibrated to %.0f%% false retrieval: edit %.1f%%, paraphrase %.1f%%
            """, facts, 100 * editAccuracy, 100 * editTop1, 100 * paraphraseAccuracy, 100 * paraphraseTop1,
               100 * falseRetrievalRate, 100 * falseRetrievalSameQuestion, 100 * matchedFalseRate,
               100 * editAtMatchedFalseRate, 100 * paraphraseAtMatchedFalseRate)
    }
}
