import Ledger
import Orders

/// Server-rendered HTML for the console: every value escaped where it is written, no template engine, no
/// JavaScript (the pages read and act through plain links and forms).
enum HTML {
    /// `text` safe in element content and in double-quoted attribute values.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// A whole page: the console's frame around `body`.
    static func page(title: String, body: String) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(escape(title))</title>
        <style>
        body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
        header{background:#1d2430;color:#fff;padding:10px 24px;display:flex;gap:24px;align-items:baseline}
        header a{color:#cfe0ff;text-decoration:none}header h1{font-size:17px;margin:0}
        main{padding:16px 24px;max-width:1280px}
        section{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:12px 16px;margin:0 0 16px}
        h2{font-size:15px;margin:0 0 8px}table{border-collapse:collapse;width:100%}
        th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eef0f3;vertical-align:top}
        th{font-weight:600;color:#5b6472;font-size:12px;text-transform:uppercase;letter-spacing:.03em}
        .flag{background:#fde8e8;color:#9b1c1c;border-radius:4px;padding:1px 6px;font-weight:600;white-space:nowrap}
        .state{border-radius:4px;padding:1px 6px;background:#eef0f3;white-space:nowrap}
        .state-unknown,.state-failed{background:#fff4d6}.state-succeeded,.state-delivered{background:#e3f6e8}
        .muted{color:#5b6472}.mono{font-family:ui-monospace,Menlo,monospace;font-size:12px}
        form.inline{display:inline}button{font:inherit;padding:2px 10px;border:1px solid #9aa4b2;border-radius:4px;background:#fff;cursor:pointer}
        .notice{background:#e8f1ff;border:1px solid #b9d2ff;padding:8px 12px;border-radius:6px;margin-bottom:16px}
        details summary{cursor:pointer}.empty{color:#5b6472;font-style:italic}
        </style></head>
        <body><header><h1>pay-sidecar</h1><a href="/console">Console</a><a href="/console#events">Events</a>
        <a href="/console#endpoints">Endpoints</a><a href="/openapi.json">API</a></header>
        <main>
        \(body)
        </main></body></html>
        """
    }

    /// A table with a header row; `empty` when there are no rows.
    static func table(_ headers: [String], _ rows: [[String]], id: String? = nil, empty: String) -> String {
        guard !rows.isEmpty else { return "<p class=\"empty\">\(escape(empty))</p>" }
        var html = "<table\(id.map { " id=\"\(escape($0))\"" } ?? "")><thead><tr>"
        html += headers.map { "<th>\(escape($0))</th>" }.joined()
        html += "</tr></thead><tbody>"
        for row in rows { html += "<tr>" + row.map { "<td>\($0)</td>" }.joined() + "</tr>" }
        return html + "</tbody></table>"
    }

    /// A POST form with one button (and hidden fields): the console's actions work without JavaScript.
    static func button(_ label: String, action: String, fields: [(String, String)] = [], testID: String? = nil) -> String {
        let hidden = fields.map { "<input type=\"hidden\" name=\"\(escape($0.0))\" value=\"\(escape($0.1))\">" }.joined()
        let data = testID.map { " data-test=\"\(escape($0))\"" } ?? ""
        return "<form class=\"inline\" method=\"post\" action=\"\(escape(action))\">\(hidden)<button type=\"submit\"\(data)>\(escape(label))</button></form>"
    }

    /// Creates, settlements and failed deliveries per bucket as grouped bars (an SVG drawn here: no chart library).
    static func activityChart(_ buckets: [ActivityBucket], label: (Millis) -> String) -> String {
        let width = 960.0, height = 180.0, left = 36.0, bottom = 22.0, top = 8.0
        // The axis' top: the highest bar rounded up to a multiple of 4, so the five grid lines read as whole numbers.
        let highest = buckets.map { max($0.creates, $0.settlements, $0.failedDeliveries) }.max() ?? 0
        let peak = max(4, (highest + 3) / 4 * 4)
        let slot = (width - left) / Double(max(buckets.count, 1))
        let bar = max(1, slot / 4)
        let colors = ["#3b6fd8", "#2f9e5b", "#d23c3c"]
        var svg = "<svg role=\"img\" aria-label=\"Activity per hour\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" width=\"100%\" xmlns=\"http://www.w3.org/2000/svg\">"
        let plot = height - bottom - top
        for step in 0...4 {
            let y = top + plot * Double(step) / 4
            svg += "<line x1=\"\(left)\" x2=\"\(width)\" y1=\"\(y)\" y2=\"\(y)\" stroke=\"#eef0f3\"/>"
            svg += "<text x=\"\(left - 4)\" y=\"\(y + 4)\" font-size=\"10\" text-anchor=\"end\" fill=\"#5b6472\">\(peak * (4 - step) / 4)</text>"
        }
        for (index, bucket) in buckets.enumerated() {
            let x = left + Double(index) * slot + slot / 8
            for (series, value) in [bucket.creates, bucket.settlements, bucket.failedDeliveries].enumerated() where value > 0 {
                let h = plot * Double(value) / Double(peak)
                svg += "<rect x=\"\(x + Double(series) * bar)\" y=\"\(top + plot - h)\" width=\"\(bar)\" height=\"\(h)\" fill=\"\(colors[series])\"><title>\(value)</title></rect>"
            }
            if index % max(1, buckets.count / 12) == 0 {
                svg += "<text x=\"\(x)\" y=\"\(height - 6)\" font-size=\"10\" fill=\"#5b6472\">\(escape(label(bucket.start)))</text>"
            }
        }
        svg += "</svg>"
        let legend = zip(["orders created", "settled", "failed deliveries"], colors).map { name, color in
            "<span style=\"margin-right:14px\"><span style=\"display:inline-block;width:10px;height:10px;background:\(color)\"></span> \(name)</span>"
        }.joined()
        return svg + "<div class=\"muted\">\(legend)</div>"
    }
}
