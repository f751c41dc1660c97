import Crypto

/// A signing input that lacks one of its layout's fields.
public struct MissingSignedField: Error, Sendable, Hashable, CustomStringConvertible {
    public let layout: SignatureLayout
    public let field: String
    public var description: String { "\(layout.rawValue): signed field '\(field)' is missing" }
}

/// Computes and checks the gateway's MD5 signatures.
public enum GatewaySignature {
    /// The text that is hashed, with the secret shown as `***`: safe to print, for troubleshooting.
    public static func maskedSignString(_ layout: SignatureLayout, _ fields: [String: String]) throws(MissingSignedField) -> String {
        var bytes = try canonicalPrefix(layout, fields)
        bytes.append(contentsOf: "&key=***".utf8)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `lowercase_hex(MD5(k1=v1&...&key=SECRET))` for `layout` over `fields` (extra fields are ignored).
    public static func sign(_ layout: SignatureLayout, _ fields: [String: String], secret: MerchantSecret) throws(MissingSignedField) -> String {
        var bytes = try canonicalPrefix(layout, fields)
        bytes.append(contentsOf: "&key=".utf8)
        bytes.append(contentsOf: secret.bytes)
        defer {
            // Do not leave the secret lying in a freed buffer longer than needed.
            for i in bytes.indices { bytes[i] = 0 }
        }
        return hexDigest(bytes)
    }

    /// Checks `signature` against the one computed for `fields`, in constant time.
    /// Upper-case hex is accepted; any other length or character is a mismatch.
    public static func verify(_ layout: SignatureLayout, _ fields: [String: String], signature: String, secret: MerchantSecret) -> Bool {
        guard let expected = try? sign(layout, fields, secret: secret) else { return false }
        return constantTimeEquals(Array(expected.utf8), Array(signature.asciiLowercased().utf8))
    }

    /// The signature of arbitrary pairs in the given order: `lowercase_hex(MD5(k1=v1&...&key=SECRET))`.
    /// For troubleshooting (reproducing what a signer that got the layout wrong computed), not for messages.
    public static func sign(pairs: [(name: String, value: String)], secret: MerchantSecret) -> String {
        var bytes = Array(pairs.map { "\($0.name)=\($0.value)" }.joined(separator: "&").utf8)
        bytes.append(contentsOf: "&key=".utf8)
        bytes.append(contentsOf: secret.bytes)
        defer { for i in bytes.indices { bytes[i] = 0 } }
        return hexDigest(bytes)
    }

    /// `k1=v1&...&kN=vN` without the key.
    static func canonicalPrefix(_ layout: SignatureLayout, _ fields: [String: String]) throws(MissingSignedField) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256)
        for (i, name) in layout.fields.enumerated() {
            guard let value = fields[name] else { throw MissingSignedField(layout: layout, field: name) }
            if i > 0 { bytes.append(UInt8(ascii: "&")) }
            bytes.append(contentsOf: name.utf8)
            bytes.append(UInt8(ascii: "="))
            bytes.append(contentsOf: value.utf8)
        }
        return bytes
    }

    static func hexDigest(_ bytes: [UInt8]) -> String {
        let digest = Insecure.MD5.hash(data: bytes)
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(32)
        for b in digest {
            out.append(hex[Int(b >> 4)])
            out.append(hex[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Compares two byte strings without an early exit, so the time taken does not reveal where they differ.
/// Lengths are not secret (a signature is always 32 characters), so unequal lengths return at once.
public func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var diff: UInt8 = 0
    for i in a.indices { diff |= a[i] ^ b[i] }
    return diff == 0
}
