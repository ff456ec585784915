// The one count of a commit's outcomes, as the worker's log and metrics, `recipe ingest`'s
// step lines, inbox file reports and the socket's metrics read it.
import Storage
import Testing
import Worker

@Suite struct OutcomeSummaryTests {
    @Test func countsEachKindOfOutcome() {
        let outcomes: [FactOutcome] = [
            .added(id: "a", sequence: 1), .added(id: "b", sequence: 2), .superseded(id: "c", sequence: 3, replaced: "a"),
            .duplicate(existing: "b"), .retracted(id: "c"), .notFound("ghost"), .invalid("statement too long"),
            .duplicate(existing: "a"),
        ]
        let c = OutcomeSummary(outcomes)
        #expect((c.added, c.superseded, c.duplicates, c.retracted, c.refused) == (2, 1, 2, 1, 2))
        #expect(c.stored == outcomes.filter(\.isStored).count)
        #expect(c.stored == 4 && c.operations == outcomes.count)
        #expect(OutcomeSummary() == OutcomeSummary([]))

        var total = OutcomeSummary(outcomes.prefix(3))
        total += OutcomeSummary(outcomes.dropFirst(3))
        #expect(total == c)
    }

    @Test func refusalsSayWhyNothingWasStored() {
        #expect(OutcomeSummary.refusal(.notFound("ghost")) == "no live fact ghost to retract")
        #expect(OutcomeSummary.refusal(.invalid("statement too long")) == "statement too long")
        for stored: FactOutcome in [.added(id: "a", sequence: 1), .superseded(id: "b", sequence: 2, replaced: "a"),
                                    .duplicate(existing: "a"), .retracted(id: "b")] {
            #expect(OutcomeSummary.refusal(stored) == nil)
        }
    }

    /// A step's report sums the outcomes of every commit in it, and reports summed over
    /// steps count what each counted.
    @Test func reportsOfStepsAddUp() {
        var first = TimeStepReport()
        first.outcomes = [.added(id: "a", sequence: 1), .notFound("x")]
        first.rejectionFiles = ["/r/feed.rejections"]
        var second = TimeStepReport()
        second.outcomes = [.duplicate(existing: "a"), .retracted(id: "a")]
        second.rejectionFiles = ["/r/feed.rejections", "/r/stdin.rejections"]
        var all = first
        all.append(second)
        #expect(all.counts == OutcomeSummary(first.outcomes + second.outcomes))
        #expect((all.counts.stored, all.counts.duplicates, all.counts.refused) == (2, 1, 1))
        #expect(all.rejectionFiles == ["/r/feed.rejections", "/r/stdin.rejections"])
    }
}
