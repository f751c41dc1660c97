/// URLs as logs and errors may show them.
public enum URLText {
    /// `url` without its userinfo (`user:password@`), query and fragment, which may carry credentials:
    /// `https://user:pw@hooks.example/in?token=x` → `https://hooks.example/in`.
    public static func redacted(_ url: String) -> String {
        var text = Substring(url)
        if let cut = text.firstIndex(where: { $0 == "?" || $0 == "#" }) { text = text[..<cut] }
        let scalars = Array(text.unicodeScalars)
        var authorityStart: Int?
        for i in 0..<max(0, scalars.count - 2) where scalars[i] == ":" && scalars[i + 1] == "/" && scalars[i + 2] == "/" {
            authorityStart = i + 3
            break
        }
        guard let start = authorityStart else { return String(text) }
        let pathStart = scalars[start...].firstIndex(of: "/") ?? scalars.count
        guard let at = scalars[start..<pathStart].lastIndex(of: "@") else { return String(text) }
        var result = String.UnicodeScalarView()
        result.append(contentsOf: scalars[..<start])
        result.append(contentsOf: scalars[(at + 1)...])
        return String(result)
    }
}
