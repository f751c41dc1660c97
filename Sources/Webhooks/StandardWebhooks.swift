import Crypto
import Foundation

/// A Standard Webhooks secret (`whsec_` + base64 of the key). It never prints.
public struct WebhookSecret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    let key: [UInt8]

    /// Nil unless `text` is `whsec_` followed by base64 of at least 24 bytes.
    public init?(_ text: String) {
        guard text.hasPrefix("whsec_"), let data = Data(base64Encoded: String(text.dropFirst(6))), data.count >= 24 else { return nil }
        self.key = Array(data)
    }

    /// A new random secret, e.g. for the demo.
    public static func generate() -> (secret: WebhookSecret, text: String) {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let text = "whsec_" + Data(bytes).base64EncodedString()
        return (WebhookSecret(text)!, text)
    }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }

    /// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
    public func signature(id: String, timestamp: Int64, body: [UInt8]) -> String {
        var message = Array("\(id).\(timestamp).".utf8)
        message.append(contentsOf: body)
        let mac = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key))
        return "v1," + Data(mac).base64EncodedString()
    }
}

/// Signs webhook requests the Standard Webhooks way. During a secret rotation it signs with every current
/// secret, space-separated in one `webhook-signature` header, so receivers holding either one accept.
public struct WebhookSigner: Sendable {
    public var secrets: [WebhookSecret]

    public init(secrets: [WebhookSecret]) {
        self.secrets = secrets
    }

    /// The three headers for one attempt.
    public func headers(id: String, timestamp: Int64, body: [UInt8]) -> [(name: String, value: String)] {
        [
            ("webhook-id", id),
            ("webhook-timestamp", String(timestamp)),
            ("webhook-signature", secrets.map { $0.signature(id: id, timestamp: timestamp, body: body) }.joined(separator: " ")),
        ]
    }
}

/// Why a received webhook is refused.
public enum WebhookVerificationError: Error, Sendable, Hashable {
    case missingHeader(String)
    case timestampOutOfTolerance
    case noMatchingSignature
}

/// Verifies a received webhook (for receivers: the demo's, and tests).
public struct WebhookVerifier: Sendable {
    public let secret: WebhookSecret
    /// How far `webhook-timestamp` may be from now.
    public var tolerance: Int64 = 300

    public init(secret: WebhookSecret) {
        self.secret = secret
    }

    public func verify(id: String?, timestamp: String?, signatures: String?, body: [UInt8], now: Int64) throws(WebhookVerificationError) {
        guard let id else { throw .missingHeader("webhook-id") }
        guard let timestampText = timestamp, let ts = Int64(timestampText) else { throw .missingHeader("webhook-timestamp") }
        guard let signatures else { throw .missingHeader("webhook-signature") }
        guard abs(now - ts) <= tolerance else { throw .timestampOutOfTolerance }
        let expected = Array(secret.signature(id: id, timestamp: ts, body: body).utf8)
        for candidate in signatures.split(separator: " ") {
            let given = Array(candidate.utf8)
            if given.count == expected.count, zip(given, expected).reduce(0, { $0 | ($1.0 ^ $1.1) }) == 0 { return }
        }
        throw .noMatchingSignature
    }
}
