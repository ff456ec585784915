// A small dependency-free SVG line chart: one panel per metric, x = number of sequential
// edits T on a log scale, one line per method. Opens in any browser.
import Foundation

struct SVGChart {
    struct Series { var name: String; var points: [(x: Double, y: Double)] }
    struct Panel { var title: String; var series: [Series] }

    static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]

    static func render(_ panels: [Panel], title: String) -> String {
        let pw = 300.0, ph = 220.0, margin = 40.0, top = 50.0
        let width = Double(panels.count) * (pw + margin) + margin, height = top + ph + 90
        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="11">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(margin)" y="22" font-size="14" font-weight="bold">\(escape(title))</text>

        """
        let xs = panels.flatMap { $0.series.flatMap { $0.points.map(\.x) } }
        let lo = log10(max(1, xs.min() ?? 1)), hi = max(lo + 1, log10(max(1, xs.max() ?? 10)))
        for (i, panel) in panels.enumerated() {
            let x0 = margin + Double(i) * (pw + margin), y0 = top
            func px(_ x: Double) -> Double { x0 + (log10(max(1, x)) - lo) / (hi - lo) * pw }
            func py(_ y: Double) -> Double { y0 + ph - min(1, max(0, y)) * ph }
            svg += "<text x=\"\(x0)\" y=\"\(y0 - 8)\" font-weight=\"bold\">\(escape(panel.title))</text>\n"
            svg += "<rect x=\"\(x0)\" y=\"\(y0)\" width=\"\(pw)\" height=\"\(ph)\" fill=\"none\" stroke=\"#999\"/>\n"
            for t in stride(from: 0.0, through: 1.0, by: 0.25) {
                svg += "<line x1=\"\(x0)\" y1=\"\(py(t))\" x2=\"\(x0 + pw)\" y2=\"\(py(t))\" stroke=\"#eee\"/>"
                svg += "<text x=\"\(x0 - 4)\" y=\"\(py(t) + 4)\" text-anchor=\"end\">\(String(format: "%.2f", t))</text>\n"
            }
            for e in Int(lo.rounded(.down))...Int(hi.rounded(.up)) {
                let v = pow(10, Double(e))
                guard log10(v) >= lo - 1e-9, log10(v) <= hi + 1e-9 else { continue }
                svg += "<text x=\"\(px(v))\" y=\"\(y0 + ph + 14)\" text-anchor=\"middle\">\(Int(v))</text>\n"
            }
            svg += "<text x=\"\(x0 + pw / 2)\" y=\"\(y0 + ph + 30)\" text-anchor=\"middle\">sequential edits T</text>\n"
            for (k, s) in panel.series.enumerated() {
                let color = colors[k % colors.count]
                let pts = s.points.sorted { $0.x < $1.x }
                let path = pts.map { String(format: "%.1f,%.1f", px($0.x), py($0.y)) }.joined(separator: " ")
                svg += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"/>\n"
                for p in pts { svg += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%@\"/>\n", px(p.x), py(p.y), color) }
            }
        }
        let names = panels.first?.series.map(\.name) ?? []
        for (k, name) in names.enumerated() {
            let x = margin + Double(k) * 120, y = top + ph + 60
            svg += "<rect x=\"\(x)\" y=\"\(y - 9)\" width=\"12\" height=\"12\" fill=\"\(colors[k % colors.count])\"/>"
            svg += "<text x=\"\(x + 16)\" y=\"\(y + 1)\">\(escape(name))</text>\n"
        }
        return svg + "</svg>\n"
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
