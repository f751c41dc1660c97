/// Why a callback from the gateway was refused. `reason` is short plain text, safe to answer with.
public enum CallbackRejection: Error, Sendable, Hashable, CustomStringConvertible {
    case malformedBody(String)
    case missingField(String)
    case duplicateField(String)
    case invalidField(String, String)
    case wrongAppKey
    case badSignature

    /// A stable machine-readable reason, e.g. for metrics labels and the rejection log.
    public var code: String {
        switch self {
        case .malformedBody: return "malformed_body"
        case .missingField: return "missing_field"
        case .duplicateField: return "duplicate_field"
        case .invalidField: return "invalid_field"
        case .wrongAppKey: return "wrong_app_key"
        case .badSignature: return "bad_signature"
        }
    }

    public var description: String {
        switch self {
        case .malformedBody(let why): return "malformed body: \(why)"
        case .missingField(let f): return "missing field: \(f)"
        case .duplicateField(let f): return "duplicate field: \(f)"
        case .invalidField(let f, let why): return "invalid field \(f): \(why)"
        case .wrongAppKey: return "appKey does not match"
        case .badSignature: return "signature does not match"
        }
    }
}

/// The fields of one callback form, checked for shape: every signed field and `sign` present exactly once.
struct CallbackForm {
    var values: [String: String] = [:]

    init(body: some Collection<UInt8>, layout: SignatureLayout) throws(CallbackRejection) {
        let pairs: [(name: String, value: String)]
        do {
            pairs = try FormURLEncoding.decode(body)
        } catch {
            throw .malformedBody(error.message)
        }
        for (name, value) in pairs {
            // A repeated field could be read one way by us and another by whoever signed it.
            if values[name] != nil { throw .duplicateField(name) }
            values[name] = value
        }
        for name in layout.fields + ["sign"] where values[name] == nil {
            throw .missingField(name)
        }
    }

    subscript(_ name: String) -> String { values[name] ?? "" }
}

/// Checks shared by both callbacks: signature first (so a forged body learns nothing more), then appKey.
/// Several secrets are accepted while a rotation's grace period lasts.
func verifyCallback(_ layout: SignatureLayout, fields: [String: String], sign: String, appKey: String, expectedAppKey: String, secrets: [MerchantSecret]) throws(CallbackRejection) {
    guard secrets.contains(where: { GatewaySignature.verify(layout, fields, signature: sign, secret: $0) }) else { throw .badSignature }
    guard constantTimeEquals(Array(appKey.utf8), Array(expectedAppKey.utf8)) else { throw .wrongAppKey }
}

/// The gateway's "deposit paid" callback. It carries no status: it means paid.
public struct DepositCallback: Sendable, Hashable {
    /// What the customer actually paid, to the fen; may differ from `originAmount`.
    public var amount: String
    public var appKey: String
    /// The channel id, as text.
    public var channel: String
    public var mrn: String
    /// The amount of the original request.
    public var originAmount: String
    public var sign: String

    public init(amount: String, appKey: String, channel: String, mrn: String, originAmount: String, sign: String) {
        self.amount = amount
        self.appKey = appKey
        self.channel = channel
        self.mrn = mrn
        self.originAmount = originAmount
        self.sign = sign
    }

    /// Builds a signed callback (what the gateway, or the simulator, sends).
    public init(amount: String, appKey: String, channel: String, mrn: String, originAmount: String, secret: MerchantSecret) {
        self.init(amount: amount, appKey: appKey, channel: channel, mrn: mrn, originAmount: originAmount, sign: "")
        self.sign = (try? GatewaySignature.sign(.depositCallback, signedFields, secret: secret)) ?? ""
    }

    /// Parses an `application/x-www-form-urlencoded` body; checks shape only, not the signature.
    public init(formBody: some Collection<UInt8>) throws(CallbackRejection) {
        let form = try CallbackForm(body: formBody, layout: .depositCallback)
        self.init(amount: form["amount"], appKey: form["appKey"], channel: form["channel"], mrn: form["mrn"], originAmount: form["originAmount"], sign: form["sign"])
    }

    public var signedFields: [String: String] {
        ["amount": amount, "appKey": appKey, "channel": channel, "mrn": mrn, "originAmount": originAmount]
    }

    /// Verifies the signature (constant time), the appKey, and the amount and channel formats.
    public func verify(appKey expected: String, secret: MerchantSecret) throws(CallbackRejection) {
        try verify(appKey: expected, secrets: [secret])
    }

    /// As `verify(appKey:secret:)`, accepting a signature made with any of `secrets` (a rotation's grace period).
    public func verify(appKey expected: String, secrets: [MerchantSecret]) throws(CallbackRejection) {
        try verifyCallback(.depositCallback, fields: signedFields, sign: sign, appKey: appKey, expectedAppKey: expected, secrets: secrets)
        guard paidMinorUnits != nil else { throw .invalidField("amount", "not an amount in yuan") }
        guard originMinorUnits != nil else { throw .invalidField("originAmount", "not an amount in yuan") }
        guard channelId != nil else { throw .invalidField("channel", "not a channel id") }
    }

    /// The amount paid, in fen.
    public var paidMinorUnits: Int64? { AmountText.parse(amount, maxDecimals: 2, strict: false) }
    /// The amount requested, in fen.
    public var originMinorUnits: Int64? { AmountText.parse(originAmount, maxDecimals: 2, strict: false) }
    public var channelId: Int? { Int(channel) }

    /// The form as the gateway posts it.
    public var formBody: String {
        FormURLEncoding.encode([("amount", amount), ("appKey", appKey), ("channel", channel), ("mrn", mrn), ("originAmount", originAmount), ("sign", sign)])
    }
}

/// The gateway's "payout paid out" callback.
public struct PayoutCallback: Sendable, Hashable {
    /// Whole yuan, as text.
    public var amount: String
    public var appKey: String
    public var mrn: String
    public var sign: String

    public init(amount: String, appKey: String, mrn: String, sign: String) {
        self.amount = amount
        self.appKey = appKey
        self.mrn = mrn
        self.sign = sign
    }

    public init(amount: String, appKey: String, mrn: String, secret: MerchantSecret) {
        self.init(amount: amount, appKey: appKey, mrn: mrn, sign: "")
        self.sign = (try? GatewaySignature.sign(.payoutCallback, signedFields, secret: secret)) ?? ""
    }

    public init(formBody: some Collection<UInt8>) throws(CallbackRejection) {
        let form = try CallbackForm(body: formBody, layout: .payoutCallback)
        self.init(amount: form["amount"], appKey: form["appKey"], mrn: form["mrn"], sign: form["sign"])
    }

    public var signedFields: [String: String] { ["amount": amount, "appKey": appKey, "mrn": mrn] }

    public func verify(appKey expected: String, secret: MerchantSecret) throws(CallbackRejection) {
        try verify(appKey: expected, secrets: [secret])
    }

    /// As `verify(appKey:secret:)`, accepting a signature made with any of `secrets` (a rotation's grace period).
    public func verify(appKey expected: String, secrets: [MerchantSecret]) throws(CallbackRejection) {
        try verifyCallback(.payoutCallback, fields: signedFields, sign: sign, appKey: appKey, expectedAppKey: expected, secrets: secrets)
        guard minorUnits != nil else { throw .invalidField("amount", "not an amount in yuan") }
    }

    /// The amount in fen (the gateway may print whole yuan as `500` or `500.00`).
    public var minorUnits: Int64? { AmountText.parse(amount, maxDecimals: 2, strict: false) }

    public var formBody: String {
        FormURLEncoding.encode([("amount", amount), ("appKey", appKey), ("mrn", mrn), ("sign", sign)])
    }
}
