/// Escaping text for HTML: the page-mode form the sidecar hands out and the simulator's cashier page both
/// put gateway field values into HTML.
public enum HTMLText {
    /// Escapes `&`, `<`, `>`, `"` and `'`, so a value is safe in element content and in quoted attributes.
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }
}
