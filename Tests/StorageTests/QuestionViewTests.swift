import Storage
import Testing

/// `QuestionView.question(of:)`: the last sentence of a query of several, nil for one.
@Suite struct QuestionViewTests {
    @Test func oneSentenceHasNoView() {
        for q in ["Danielle Darrieux's mother tongue is", "Where was Marina Hands born?", "Where was she born?  ",
                  "The U.S.A.-born actor is", "", "   ", "Done.", "\n  Where is Riga?"] {
            #expect(QuestionView.question(of: q) == nil, "\(q)")
        }
    }

    @Test func theLastSentenceIsTheView() {
        #expect(QuestionView.question(of: "Higgins is on the music staff at ENO. Francesco Pegolotti is native to")
                == "Francesco Pegolotti is native to")
        #expect(QuestionView.question(of: "One. Two! Three? Four … Where is Riga?") == "Where is Riga?")
        // Closing quotes and brackets stay with the sentence they close.
        #expect(QuestionView.question(of: "The Korean Presbyterian Church (GaeHyuk I.) Innocent VII is a") == "Innocent VII is a")
        #expect(QuestionView.question(of: "He said \"stop.\" Then Riga is") == "Then Riga is")
        // A line break ends a sentence; white space around the view is trimmed.
        #expect(QuestionView.question(of: "Bonds Beyond Time\n  Klemens von Metternich works in \n") == "Klemens von Metternich works in")
        #expect(QuestionView.question(of: "Notes\r\nRiga is in") == "Riga is in")
        // An abbreviation's period splits too: the whole query remains the other view.
        #expect(QuestionView.question(of: "Dr. Smith was born in") == "Smith was born in")
        #expect(QuestionView.question(of: "The U.S.A. is in") == "is in")
    }

    @Test func punctuationWithoutWhiteSpaceDoesNotSplit() {
        #expect(QuestionView.question(of: "Version 2.0 of Windows.NET is made by") == nil)
        #expect(QuestionView.question(of: "Who?!Nobody") == nil)
    }
}
