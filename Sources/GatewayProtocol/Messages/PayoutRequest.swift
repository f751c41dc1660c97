/// A payout order as sent to `/api/Payouts/Create`.
public struct PayoutRequest: Sendable, Hashable {
    public var accountName: String
    public var accountNumber: String
    public var amount: PayoutAmount
    public var appKey: String
    public var bankName: String
    public var callbackUrl: String
    public var mrn: String

    public init(accountName: String, accountNumber: String, amount: PayoutAmount, appKey: String, bankName: String, callbackUrl: String, mrn: String) {
        self.accountName = accountName
        self.accountNumber = accountNumber
        self.amount = amount
        self.appKey = appKey
        self.bankName = bankName
        self.callbackUrl = callbackUrl
        self.mrn = mrn
    }

    public var signedFields: [String: String] {
        [
            "accountName": accountName, "accountNumber": accountNumber, "amount": amount.text, "appKey": appKey,
            "bankName": bankName, "callbackUrl": callbackUrl, "mrn": mrn,
        ]
    }

    public func signature(secret: MerchantSecret) -> String {
        (try? GatewaySignature.sign(.payoutRequest, signedFields, secret: secret)) ?? ""
    }

    /// The JSON body; `amount` is a JSON number with exactly the signed characters.
    public func jsonBody(secret: MerchantSecret) -> [UInt8] {
        JSONValue.object([
            "accountName": .string(accountName),
            "accountNumber": .string(accountNumber),
            "amount": .number(amount.text),
            "appKey": .string(appKey),
            "bankName": .string(bankName),
            "callbackUrl": .string(callbackUrl),
            "mrn": .string(mrn),
            "sign": .string(signature(secret: secret)),
        ]).encoded()
    }
}
