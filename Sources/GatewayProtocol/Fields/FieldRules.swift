/// One field that failed validation, in the shape of the internal API's `errors` list.
public struct FieldProblem: Sendable, Hashable, CustomStringConvertible {
    public let field: String
    public let message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { "\(field): \(message)" }
}

/// The rules every signed field must meet (contract section 3).
///
/// The gateway concatenates values without escaping, so `&` or `=` inside a value could shift field
/// boundaries in the signed string; control characters have no business in any of them.
public enum FieldRules {
    public static let mrnMaxLength = 64

    /// Fields in which `&` and `=` are refused.
    public static let delimiterFreeFields: Set<String> = ["mrn", "bankName", "accountName", "accountNumber"]

    /// Checks a free-text signed field: present, no control characters, and no `&`/`=` where refused.
    public static func text(_ field: String, _ value: String, maxLength: Int = 256) -> FieldProblem? {
        if value.isEmpty { return FieldProblem(field: field, message: "must not be empty") }
        if value.utf16.count > maxLength {
            return FieldProblem(field: field, message: "must be at most \(maxLength) characters")
        }
        if containsControlCharacter(value) {
            return FieldProblem(field: field, message: "must not contain control characters")
        }
        if delimiterFreeFields.contains(field), value.utf8.contains(where: { $0 == UInt8(ascii: "&") || $0 == UInt8(ascii: "=") }) {
            return FieldProblem(field: field, message: "must not contain '&' or '=' (they would make the signature ambiguous)")
        }
        return nil
    }

    /// `mrn`: 1 to 64 characters (counted as the gateway's platform counts them, in UTF-16 units),
    /// no control characters, no `&` or `=`.
    public static func mrn(_ value: String, field: String = "mrn") -> FieldProblem? {
        if value.isEmpty || value.utf16.count > mrnMaxLength {
            return FieldProblem(field: field, message: "must be 1 to \(mrnMaxLength) characters")
        }
        return text(field, value, maxLength: mrnMaxLength)
    }

    /// An absolute `http` or `https` URL with a host, no spaces or control characters.
    public static func absoluteURL(_ field: String, _ value: String) -> FieldProblem? {
        let problem = FieldProblem(field: field, message: "must be an absolute http(s) URL")
        if value.utf8.count > 2048 { return FieldProblem(field: field, message: "must be at most 2048 characters") }
        if containsControlCharacter(value) {
            return FieldProblem(field: field, message: "must not contain control characters")
        }
        guard let parts = URLParts(value), parts.scheme == "http" || parts.scheme == "https", !parts.host.isEmpty else {
            return problem
        }
        if value.utf8.contains(where: { $0 == 0x20 }) { return problem }
        return nil
    }

    /// True if `value` holds a C0 or C1 control character (U+0000-U+001F, U+007F-U+009F).
    public static func containsControlCharacter(_ value: String) -> Bool {
        value.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }
    }
}

/// The parts of an absolute URL that the sidecar needs: scheme, authority, and the rest.
public struct URLParts: Sendable, Hashable {
    /// Lowercased scheme, e.g. `https`.
    public let scheme: String
    /// `host[:port]` (with user info removed from `host`).
    public let authority: String
    /// Host name without port.
    public let host: String
    public let port: Int?
    /// Path, query and fragment as written (may be empty).
    public let pathAndQuery: String

    public init?(_ text: String) {
        guard let colon = text.firstIndex(of: ":") else { return nil }
        let scheme = String(text[..<colon]).asciiLowercased()
        guard !scheme.isEmpty, scheme.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2B || $0 == 0x2D || $0 == 0x2E }) else {
            return nil
        }
        let afterColon = text[text.index(after: colon)...]
        guard afterColon.hasPrefix("//") else { return nil }
        let rest = afterColon.dropFirst(2)
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        let authority = String(rest[..<authorityEnd])
        let hostPort = authority.split(separator: "@", omittingEmptySubsequences: false).last.map(String.init) ?? authority
        var host = hostPort
        var port: Int?
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { return nil }
            host = String(hostPort[...close])
            let tail = hostPort[hostPort.index(after: close)...]
            if tail.hasPrefix(":") {
                guard let p = Int(tail.dropFirst()), (0...65535).contains(p) else { return nil }
                port = p
            } else if !tail.isEmpty {
                return nil
            }
        } else if let c = hostPort.lastIndex(of: ":") {
            host = String(hostPort[..<c])
            let portText = hostPort[hostPort.index(after: c)...]
            if !portText.isEmpty {
                guard let p = Int(portText), (0...65535).contains(p) else { return nil }
                port = p
            }
        }
        guard !host.isEmpty else { return nil }
        self.scheme = scheme
        self.authority = authority
        self.host = host
        self.port = port
        self.pathAndQuery = String(rest[authorityEnd...])
    }

    /// `scheme://authority`, the origin to which a gateway-relative path is joined.
    public var origin: String { "\(scheme)://\(authority)" }
}
