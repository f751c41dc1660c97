/// Which kind of order: the gateway keeps deposits and payouts apart (their own endpoints and layouts).
public enum OrderKind: String, Sendable, Hashable, CaseIterable {
    case deposit
    case payout

    /// The gateway's query path for this kind.
    public var queryPath: String {
        switch self {
        case .deposit: return "/api/Payments/Query"
        case .payout: return "/api/Payouts/Query"
        }
    }

    public var queryLayout: SignatureLayout { self == .deposit ? .depositQuery : .payoutQuery }
    public var callbackLayout: SignatureLayout { self == .deposit ? .depositCallback : .payoutCallback }
}

/// A status query: `GET {gateway}/api/Payments/Query` or `/api/Payouts/Query`.
public struct OrderQuery: Sendable, Hashable {
    public var kind: OrderKind
    public var appKey: String
    public var mrn: String
    /// Ask the gateway to send the callback again when the order is settled.
    public var callback: Bool

    public init(kind: OrderKind, appKey: String, mrn: String, callback: Bool = false) {
        self.kind = kind
        self.appKey = appKey
        self.mrn = mrn
        self.callback = callback
    }

    public func signature(secret: MerchantSecret) -> String {
        (try? GatewaySignature.sign(kind.queryLayout, ["appKey": appKey, "mrn": mrn], secret: secret)) ?? ""
    }

    /// Path and query string, each value percent-encoded: `/api/Payouts/Query?appKey=...&mrn=...&sign=...&callback=false`.
    public func pathAndQuery(secret: MerchantSecret) -> String {
        let enc = FormURLEncoding.percentEncode
        return "\(kind.queryPath)?appKey=\(enc(appKey))&mrn=\(enc(mrn))&sign=\(signature(secret: secret))&callback=\(callback)"
    }
}
