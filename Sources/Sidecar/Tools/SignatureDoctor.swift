import ConfigurationValues
import GatewayProtocol

/// Explains signatures for people: what `pay-sidecar sign` and `pay-sidecar verify-callback` print.
/// Signature mismatches are the most common integration problem, and an MD5 mismatch alone says nothing
/// about why; this shows the exact text that is hashed (secret masked) and tries the usual mistakes.
public enum SignatureDoctor {
    /// The message names the tools accept: the layouts' names, with `-` or `_`.
    public static func layout(named name: String) -> SignatureLayout? {
        SignatureLayout(rawValue: String(name.lowercased().map { $0 == "-" ? "_" : $0 }))
    }

    public static var layoutNames: String { SignatureLayout.allCases.map(\.rawValue).joined(separator: ", ") }

    /// What `sign` prints: the signed fields, the masked canonical string, the signature, and warnings
    /// about values that usually mean a mistake. Throws when a signed field is missing.
    public static func sign(_ layout: SignatureLayout, fields: [String: String], secret: MerchantSecret) throws(MissingSignedField) -> [String] {
        var lines = [
            "message:   \(layout.rawValue)",
            "fields:    \(layout.fields.joined(separator: ", ")) (in this order, then key=<secret>)",
            "canonical: \(try GatewaySignature.maskedSignString(layout, fields))",
            "sign:      \(try GatewaySignature.sign(layout, fields, secret: secret))",
        ]
        let unsigned = fields.keys.filter { !layout.fields.contains($0) && $0 != "sign" }.sorted()
        if !unsigned.isEmpty { lines.append("note:      not signed, ignored: \(unsigned.joined(separator: ", "))") }
        lines += warnings(layout, fields)
        return lines
    }

    /// Field values that are legal to hash but usually mean the two sides will hash different text.
    static func warnings(_ layout: SignatureLayout, _ fields: [String: String]) -> [String] {
        var lines: [String] = []
        for name in layout.fields {
            guard let value = fields[name] else { continue }
            if value != value.trimmingSpaces() {
                lines.append("warning:   \(name) has leading or trailing whitespace; it is signed as is")
            }
            if FieldRules.containsControlCharacter(value) {
                lines.append("warning:   \(name) contains a control character")
            }
            if name != "callbackUrl" && name != "returnUrl" && (value.contains("&") || value.contains("=")) {
                lines.append("warning:   \(name) contains '&' or '=', which makes the signed text ambiguous")
            }
            if value.contains("%") {
                lines.append("warning:   \(name) contains '%': values are signed decoded, as the gateway reads them, not percent-encoded")
            }
        }
        return lines
    }

    /// The verdict on one callback body.
    public struct Verdict: Sendable {
        public var valid: Bool
        public var lines: [String]
    }

    /// Checks a raw callback body (`application/x-www-form-urlencoded`, as the gateway posts it) step by
    /// step, saying which field or which part of the signature is wrong. `kind` nil: guessed from the fields.
    public static func verifyCallback(body: [UInt8], kind: OrderKind?, appKey: String?, secrets: [MerchantSecret]) -> Verdict {
        var lines: [String] = []
        let pairs: [(name: String, value: String)]
        do {
            pairs = try FormURLEncoding.decode(body)
        } catch {
            return Verdict(valid: false, lines: ["FAIL  the body is not form-encoded: \(error.message)"])
        }
        var fields: [String: String] = [:]
        var repeated: [String] = []
        for (name, value) in pairs {
            if fields[name] != nil { repeated.append(name) }
            fields[name] = value
        }
        let kind = kind ?? (fields["originAmount"] != nil || fields["channel"] != nil ? .deposit : .payout)
        let layout: SignatureLayout = kind == .deposit ? .depositCallback : .payoutCallback
        lines.append("kind:      \(kind.rawValue) callback (signed fields: \(layout.fields.joined(separator: ", ")))")
        var valid = true
        for name in repeated {
            lines.append("FAIL  \(name) appears more than once; the sidecar refuses repeated fields")
            valid = false
        }
        let missing = (layout.fields + ["sign"]).filter { fields[$0] == nil }
        for name in missing {
            lines.append("FAIL  \(name) is missing")
            valid = false
        }
        let unknown = fields.keys.filter { !layout.fields.contains($0) && $0 != "sign" }.sorted()
        if !unknown.isEmpty { lines.append("note  not signed, ignored: \(unknown.joined(separator: ", "))") }
        guard missing.isEmpty else { return Verdict(valid: false, lines: lines) }

        if let appKey {
            if fields["appKey"] == appKey {
                lines.append("ok    appKey is ours")
            } else {
                lines.append("FAIL  appKey is '\(fields["appKey"]!)', this sidecar's is '\(appKey)'")
                valid = false
            }
        }
        let given = fields["sign"]!
        let canonical = (try? GatewaySignature.maskedSignString(layout, fields)) ?? ""
        lines.append("canonical: \(canonical)")
        if let index = secrets.firstIndex(where: { GatewaySignature.verify(layout, fields, signature: given, secret: $0) }) {
            lines.append("ok    sign matches\(index > 0 ? " the PREVIOUS secret (accepted during the grace period only)" : "")")
        } else {
            valid = false
            let expected = (try? GatewaySignature.sign(layout, fields, secret: secrets[0])) ?? ""
            lines.append("FAIL  sign does not match")
            lines.append("      given:    \(given)")
            lines.append("      expected: \(expected)")
            if given.count != 32 || !given.allSatisfy(\.isHexDigit) {
                lines.append("      the given sign is not 32 hex digits: it is not an MD5 in hex at all")
            }
            lines += diagnose(layout, fields, given: given, secret: secrets[0])
        }
        for name in layout.fields {
            if name.lowercased().contains("amount"), let value = fields[name], AmountText.parse(value, maxDecimals: 2, strict: false) == nil {
                lines.append("FAIL  \(name) '\(value)' is not an amount in yuan")
                valid = false
            }
        }
        return Verdict(valid: valid, lines: lines)
    }

    /// Tries the usual mistakes one at a time and reports those that would have produced the given sign.
    static func diagnose(_ layout: SignatureLayout, _ fields: [String: String], given: String, secret: MerchantSecret) -> [String] {
        func matches(_ candidate: [String: String], _ order: [String]? = nil) -> Bool {
            if let order {
                let computed = GatewaySignature.sign(pairs: order.map { ($0, candidate[$0] ?? "") }, secret: secret)
                return constantTimeEquals(Array(computed.utf8), Array(given.lowercased().utf8))
            }
            return GatewaySignature.verify(layout, candidate, signature: given, secret: secret)
        }
        var found: [String] = []
        for name in layout.fields {
            let value = fields[name] ?? ""
            var variants: [(String, String)] = [
                (value.trimmingSpaces(), "trimmed"),
                (FormURLEncoding.percentEncode(value), "percent-encoded"),
                (FormURLEncoding.percentDecode(value) ?? value, "percent-decoded again"),
            ]
            if let minor = AmountText.parse(value, maxDecimals: 2, strict: false), name.lowercased().contains("amount") {
                let whole = minor / 100, cents = minor % 100
                variants += [
                    ("\(whole).\(String(cents + 100).dropFirst())", "with two decimals"),
                    (cents == 0 ? "\(whole)" : value, "without decimals"),
                    (cents % 10 == 0 ? "\(whole).\(cents / 10)" : value, "with one decimal"),
                ]
            }
            for (variant, how) in variants where variant != value {
                var candidate = fields
                candidate[name] = variant
                if matches(candidate) {
                    found.append("      the signer used \(name) = '\(variant)' (\(how)), the body carries '\(value)': the value changed between signing and sending")
                }
            }
        }
        let reordered = [
            (layout.fields.sorted { $0.lowercased() < $1.lowercased() }, "case-insensitive alphabetical order"),
            (layout.fields.sorted(), "byte order"),
            (layout.fields.filter { $0 != "appKey" }, "without appKey"),
        ]
        for (order, how) in reordered where order != layout.fields && matches(fields, order) {
            found.append("      the signer signed the fields in \(how): \(order.joined(separator: ", "))")
        }
        if found.isEmpty {
            found.append("      no single usual mistake explains it: most likely the signer's secret differs from this one (check the secret, and whether it was rotated)")
        }
        return found
    }
}
