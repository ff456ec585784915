// Shared helpers for the WeightFormats tests: hex bytes and error matching.
import Testing
import TestSupport
import WeightFormats


func hexBytes(_ hex: String) -> [UInt8] {
    var out = [UInt8]()
    var it = hex.utf8.makeIterator()
    while let a = it.next(), let b = it.next() {
        func v(_ c: UInt8) -> UInt8 { c <= 57 ? c - 48 : (c | 0x20) - 87 }
        out.append(v(a) << 4 | v(b))
    }
    return out
}

/// Runs `body` and returns the WeightFormatError it throws (a test failure otherwise).
func expectWeightError(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> WeightFormatError? {
    do {
        try body()
        Issue.record("expected a WeightFormatError, nothing was thrown", sourceLocation: sourceLocation)
    } catch let e as WeightFormatError {
        return e
    } catch {
        Issue.record("expected a WeightFormatError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}
