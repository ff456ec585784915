// The editor's retrieval settings. The retrieval itself is `Retriever`, the one
// implementation the worker serves and the evaluation measures.
import Storage

extension RecipeModel {
    /// The subject rule of this editor (`RecipeConfig.subjectWeight`).
    public var subjectRule: SubjectRule { SubjectRule(weight: config.subjectWeight) }
}
