/// Durations as configuration writes them: `250ms`, `5s`, `2m`, `1h`, `400d`, or a bare number of milliseconds.
public enum DurationText {
    /// Parses one duration; nil for anything else (negative, empty, unknown unit, overflow).
    public static func parse(_ text: String) -> Duration? {
        let t = text.trimmingSpaces()
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        for (suffix, factor) in units where t.hasSuffix(suffix) {
            let number = t.dropLast(suffix.count)
            guard !number.isEmpty, number.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), number.count <= 12, let n = Int64(number) else { return nil }
            return .milliseconds(n * factor)
        }
        if !t.isEmpty, t.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), t.count <= 12, let n = Int64(t) { return .milliseconds(n) }
        return nil
    }

    /// Parses a comma-separated list of durations; nil if any element is not one.
    public static func parseList(_ text: String) -> [Duration]? {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { parse(String($0)) }
        guard !parts.isEmpty, !parts.contains(where: { $0 == nil }) else { return nil }
        return parts.compactMap { $0 }
    }

    /// Writes a duration in the largest unit that divides it: `5m`, `1500ms`.
    public static func format(_ d: Duration) -> String {
        let ms = d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
        if ms % 86_400_000 == 0, ms > 0, ms >= 7 * 86_400_000 { return "\(ms / 86_400_000)d" }
        if ms % 3_600_000 == 0, ms > 0 { return "\(ms / 3_600_000)h" }
        if ms % 60_000 == 0, ms > 0 { return "\(ms / 60_000)m" }
        if ms % 1000 == 0 { return "\(ms / 1000)s" }
        return "\(ms)ms"
    }
}

/// An address to listen on: `host:port`, `[v6]:port`, or `:port` (all interfaces).
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        let portText = text[text.index(after: colon)...]
        guard !portText.isEmpty, portText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let port = Int(portText), (0...65535).contains(port) else { return nil }
        if host.hasPrefix("[") {
            guard host.hasSuffix("]") else { return nil }
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") {
            return nil  // an IPv6 address needs brackets
        }
        if host.isEmpty { host = "0.0.0.0" }
        guard !host.contains(where: { $0 == " " || $0 == "/" }) else { return nil }
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// True when only this machine can connect: `localhost`, 127.0.0.0/8, `::1`.
    public var isLoopback: Bool {
        if host.lowercased() == "localhost" { return true }
        return IPRange.loopback.contains { $0.contains(host) }
    }
}

extension String {
    /// The string without leading and trailing whitespace.
    public func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
