// RecipeConfig's settings that decide what a training run may change.
import Testing
import Recipe

@Suite struct RecipeConfigTests {
    /// `--freeze-retrieval` on an editor past stage 3 must not move its query encoder layer:
    /// every rate of a retrieval part is 0 and no edit gradient reaches the knowledge head,
    /// while the prompt transformer keeps its rate.
    @Test func freezingRetrievalStopsEveryRetrievalPart() {
        var c = RecipeConfig()
        c.queryEncoderLayers = 1
        let prompt = c.promptLearningRate
        c.freezeRetrieval()
        #expect(c.headLearningRate == 0)
        #expect(c.encoderLearningRate == 0)
        #expect(!c.editGradientToKnowledgeHead)
        #expect(c.promptLearningRate == prompt && prompt > 0)
    }
}
