/// A deposit order as sent to the gateway (`/api/Pay` form or `/api/Pay/Create` JSON).
public struct DepositRequest: Sendable, Hashable {
    public var amount: DepositAmount
    public var appKey: String
    public var callbackUrl: String
    public var channelId: Int
    public var mrn: String
    public var returnUrl: String
    /// The payer's real name; sent but never signed.
    public var payer: String?

    public init(amount: DepositAmount, appKey: String, callbackUrl: String, channelId: Int, mrn: String, returnUrl: String, payer: String? = nil) {
        self.amount = amount
        self.appKey = appKey
        self.callbackUrl = callbackUrl
        self.channelId = channelId
        self.mrn = mrn
        self.returnUrl = returnUrl
        self.payer = payer
    }

    /// The signed fields as the signer sees them.
    public var signedFields: [String: String] {
        [
            "amount": amount.text, "appKey": appKey, "callbackUrl": callbackUrl,
            "channelId": String(channelId), "mrn": mrn, "returnUrl": returnUrl,
        ]
    }

    public func signature(secret: MerchantSecret) -> String {
        // Every field of the layout is present by construction.
        (try? GatewaySignature.sign(.depositRequest, signedFields, secret: secret)) ?? ""
    }

    /// Page mode: every form field, in document order, `sign` included and `payer` when present.
    public func formFields(secret: MerchantSecret) -> [(name: String, value: String)] {
        var fields: [(name: String, value: String)] = [
            ("amount", amount.text), ("appKey", appKey), ("callbackUrl", callbackUrl),
            ("channelId", String(channelId)), ("mrn", mrn), ("returnUrl", returnUrl),
            ("sign", signature(secret: secret)),
        ]
        if let payer { fields.append(("payer", payer)) }
        return fields
    }

    /// Web API mode: the JSON body for `/api/Pay/Create`. `amount` and `channelId` are JSON numbers
    /// written with exactly the characters that were signed.
    public func jsonBody(secret: MerchantSecret) -> [UInt8] {
        var members: [JSONValue.JSONMember] = [
            .init("amount", .number(amount.text)),
            .init("appKey", .string(appKey)),
            .init("callbackUrl", .string(callbackUrl)),
            .init("channelId", .number(String(channelId))),
            .init("mrn", .string(mrn)),
            .init("returnUrl", .string(returnUrl)),
            .init("sign", .string(signature(secret: secret))),
        ]
        if let payer { members.append(.init("payer", .string(payer))) }
        return JSONValue.object(members).encoded()
    }
}
