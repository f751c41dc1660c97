/// An IPv4 or IPv6 address range written as an address or CIDR (`203.0.113.7`, `10.0.0.0/8`, `2001:db8::/32`).
public struct IPRange: Sendable, Hashable, CustomStringConvertible {
    /// 4 or 16 bytes.
    public let network: [UInt8]
    public let prefixLength: Int

    public init?(_ text: String) {
        let parts = text.trimmingSpaces().split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2, let address = IPRange.parseAddress(String(parts[0])) else { return nil }
        let bits = address.count * 8
        var prefix = bits
        if parts.count == 2 {
            guard !parts[1].isEmpty, parts[1].utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let p = Int(parts[1]), p <= bits else { return nil }
            prefix = p
        }
        self.network = IPRange.mask(address, prefix)
        self.prefixLength = prefix
    }

    /// 127.0.0.0/8 and ::1.
    public static let loopback: [IPRange] = [IPRange("127.0.0.0/8"), IPRange("::1")].compactMap { $0 }

    /// True if `address` (text) lies in this range. IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) match IPv4 ranges.
    public func contains(_ address: String) -> Bool {
        guard var bytes = IPRange.parseAddress(address) else { return false }
        if bytes.count == 16, network.count == 4, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
            bytes = Array(bytes[12...])
        }
        guard bytes.count == network.count else { return false }
        return IPRange.mask(bytes, prefixLength) == network
    }

    public var description: String {
        let address: String
        if network.count == 4 {
            address = network.map(String.init).joined(separator: ".")
        } else {
            address = stride(from: 0, to: 16, by: 2).map { String(UInt16(network[$0]) << 8 | UInt16(network[$0 + 1]), radix: 16) }.joined(separator: ":")
        }
        return "\(address)/\(prefixLength)"
    }

    static func mask(_ bytes: [UInt8], _ prefix: Int) -> [UInt8] {
        var out = bytes
        for i in out.indices {
            let bitsHere = max(0, min(8, prefix - i * 8))
            out[i] &= bitsHere == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - bitsHere))
        }
        return out
    }

    /// Parses dotted IPv4 or RFC 4291 IPv6 text (with `::` and an embedded IPv4 tail). Zone ids are refused.
    public static func parseAddress(_ text: String) -> [UInt8]? {
        text.contains(":") ? parseIPv6(Substring(text)) : parseIPv4(Substring(text))
    }

    static func parseIPv6(_ text: Substring) -> [UInt8]? {
        var s = text
        var v4Tail: [UInt8]? = nil
        if let lastColon = s.lastIndex(of: ":"), s[s.index(after: lastColon)...].contains(".") {
            guard let v4 = parseIPv4(s[s.index(after: lastColon)...]) else { return nil }
            v4Tail = v4
            s = s[...lastColon]
            if !s.hasSuffix("::") { s = s.dropLast() }
        }
        func groups(_ part: Substring) -> [UInt16]? {
            if part.isEmpty { return [] }
            var out: [UInt16] = []
            for group in part.split(separator: ":", omittingEmptySubsequences: false) {
                guard (1...4).contains(group.count), let value = UInt16(group, radix: 16) else { return nil }
                out.append(value)
            }
            return out
        }
        let chars = Array(s)
        var gapAt: Int? = nil
        for i in 0..<max(0, chars.count - 1) where chars[i] == ":" && chars[i + 1] == ":" {
            if gapAt != nil { return nil }  // at most one "::"
            gapAt = i
        }
        let extra = v4Tail == nil ? 0 : 2
        var all: [UInt16]
        if let gapAt {
            guard let head = groups(Substring(String(chars[0..<gapAt]))), let tail = groups(Substring(String(chars[(gapAt + 2)...]))) else { return nil }
            guard head.count + tail.count + extra <= 7 else { return nil }
            all = head + Array(repeating: 0, count: 8 - head.count - tail.count - extra) + tail
        } else {
            guard let plain = groups(s), plain.count + extra == 8 else { return nil }
            all = plain
        }
        if let v4Tail { all += [UInt16(v4Tail[0]) << 8 | UInt16(v4Tail[1]), UInt16(v4Tail[2]) << 8 | UInt16(v4Tail[3])] }
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }

    static func parseIPv4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let v = Int(part), v <= 255 else { return nil }
            if part.count > 1, part.first == "0" { return nil }  // no octal ambiguity
            out.append(UInt8(v))
        }
        return out
    }
}
