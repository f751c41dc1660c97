/// The six messages the gateway signs, each with its fixed list of signed fields.
///
/// `sign = lowercase_hex(MD5("k1=v1&...&kN=vN&key=SECRET"))` over exactly these fields, in this order.
public enum SignatureLayout: String, Sendable, CaseIterable, Hashable {
    case depositRequest = "deposit_request"
    case depositCallback = "deposit_callback"
    case depositQuery = "deposit_query"
    case payoutRequest = "payout_request"
    case payoutCallback = "payout_callback"
    case payoutQuery = "payout_query"

    /// Signed field names, in signing order.
    public var fields: [String] {
        switch self {
        case .depositRequest: return ["amount", "appKey", "callbackUrl", "channelId", "mrn", "returnUrl"]
        case .depositCallback: return ["amount", "appKey", "channel", "mrn", "originAmount"]
        case .depositQuery, .payoutQuery: return ["appKey", "mrn"]
        case .payoutRequest: return ["accountName", "accountNumber", "amount", "appKey", "bankName", "callbackUrl", "mrn"]
        case .payoutCallback: return ["amount", "appKey", "mrn"]
        }
    }
}
