/// Why an `application/x-www-form-urlencoded` body could not be read.
public struct FormDecodingError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// `application/x-www-form-urlencoded`, as the gateway posts callbacks and browsers post the cashier form.
public enum FormURLEncoding {
    /// Decodes a body into ordered name/value pairs: `+` is a space, `%XX` a byte, and the result must be UTF-8.
    public static func decode(_ body: some Collection<UInt8>) throws(FormDecodingError) -> [(name: String, value: String)] {
        var pairs: [(name: String, value: String)] = []
        let bytes = Array(body)
        var start = 0
        while start <= bytes.count {
            var end = start
            while end < bytes.count, bytes[end] != UInt8(ascii: "&") { end += 1 }
            if end > start {
                let part = bytes[start..<end]
                if let eq = part.firstIndex(of: UInt8(ascii: "=")) {
                    pairs.append((try unescape(bytes[start..<eq]), try unescape(bytes[(eq + 1)..<end])))
                } else {
                    pairs.append((try unescape(part), ""))
                }
            }
            start = end + 1
        }
        return pairs
    }

    public static func decode(_ text: String) throws(FormDecodingError) -> [(name: String, value: String)] {
        try decode(Array(text.utf8))
    }

    /// Decodes `%XX` escapes in a URL path segment (`+` stays `+`); nil for bad escapes or invalid UTF-8.
    public static func percentDecode(_ text: some StringProtocol) -> String? {
        let bytes = Array(text.utf8)
        guard bytes.contains(UInt8(ascii: "%")) else { return String(text) }
        var plusFree = bytes
        // Protect literal '+' from form decoding by escaping it first.
        plusFree = plusFree.flatMap { $0 == UInt8(ascii: "+") ? Array("%2B".utf8) : [$0] }
        return try? unescape(plusFree[...])
    }

    static func unescape(_ slice: ArraySlice<UInt8>) throws(FormDecodingError) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(slice.count)
        var i = slice.startIndex
        while i < slice.endIndex {
            let b = slice[i]
            if b == UInt8(ascii: "+") {
                out.append(0x20)
                i += 1
            } else if b == UInt8(ascii: "%") {
                guard i + 2 < slice.endIndex, let hi = hexValue(slice[i + 1]), let lo = hexValue(slice[i + 2])
                else {
                    throw FormDecodingError(message: "invalid percent-encoding")
                }
                out.append(hi << 4 | lo)
                i += 3
            } else {
                out.append(b)
                i += 1
            }
        }
        guard let s = String(validating: out, as: UTF8.self) else {
            throw FormDecodingError(message: "form value is not valid UTF-8")
        }
        return s
    }

    static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// Encodes ordered pairs as a form body: unreserved characters as they are, space as `+`, all else `%XX`.
    public static func encode(_ pairs: some Sequence<(String, String)>) -> String {
        var out: [UInt8] = []
        var first = true
        for (name, value) in pairs {
            if !first { out.append(UInt8(ascii: "&")) }
            first = false
            escape(name, into: &out, spaceAsPlus: true)
            out.append(UInt8(ascii: "="))
            escape(value, into: &out, spaceAsPlus: true)
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Percent-encodes one component for a URL query (space as `%20`).
    public static func percentEncode(_ s: String) -> String {
        var out: [UInt8] = []
        escape(s, into: &out, spaceAsPlus: false)
        return String(decoding: out, as: UTF8.self)
    }

    static func escape(_ s: String, into out: inout [UInt8], spaceAsPlus: Bool) {
        let hex: [UInt8] = Array("0123456789ABCDEF".utf8)
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(b)
            case 0x20 where spaceAsPlus:
                out.append(UInt8(ascii: "+"))
            default:
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(b >> 4)])
                out.append(hex[Int(b & 0xF)])
            }
        }
    }
}
