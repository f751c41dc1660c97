/// An answer from the gateway that does not have the documented shape.
public struct GatewayAnswerError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The `error` code of a payout create or query answer. Known codes have names; any other code the gateway
/// invents is kept as it came, never crashed on.
public struct GatewayResultCode: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    public static let success = GatewayResultCode(rawValue: "success")
    public static let invalidData = GatewayResultCode(rawValue: "invalid_data")
    public static let signError = GatewayResultCode(rawValue: "sign_error")
    public static let mrnDuplication = GatewayResultCode(rawValue: "mrn_duplication")
    public static let insufficientBalance = GatewayResultCode(rawValue: "insufficient_balance")
    public static let objectNotFound = GatewayResultCode(rawValue: "object_not_found")

    /// The five error codes the gateway documents for payouts.
    public static let documentedErrors: [GatewayResultCode] = [.invalidData, .signError, .mrnDuplication, .insufficientBalance, .objectNotFound]

    public var isSuccess: Bool { rawValue.asciiLowercased() == "success" }
    public var isDocumented: Bool { isSuccess || Self.documentedErrors.contains(self) }
    public var description: String { rawValue }
}

/// Answer of `/api/Pay/Create`: `{success, errorMsg, payUrl}`.
public struct DepositCreateAnswer: Sendable, Hashable {
    public var success: Bool
    public var errorMsg: String?
    /// Path and query on the gateway (`/api/Pay?id=...`), or, from some gateways, an absolute URL.
    public var payUrl: String?

    public init(success: Bool, errorMsg: String? = nil, payUrl: String? = nil) {
        self.success = success
        self.errorMsg = errorMsg
        self.payUrl = payUrl
    }

    /// Reads the answer; member names are matched ignoring case.
    public init(json bytes: some Collection<UInt8>) throws(GatewayAnswerError) {
        let object = try parseAnswerObject(bytes)
        guard let success = object.member(caseInsensitive: "success").flatMap(lenientBool) else {
            throw GatewayAnswerError("deposit answer has no boolean 'success'")
        }
        self.success = success
        self.errorMsg = object.member(caseInsensitive: "errorMsg")?.scalarText
        self.payUrl = object.member(caseInsensitive: "payUrl")?.stringValue
        if success, (payUrl ?? "").isEmpty {
            throw GatewayAnswerError("deposit answer is successful but has no 'payUrl'")
        }
    }

    public func encoded() -> [UInt8] {
        JSONValue.object([
            "success": .bool(success),
            "errorMsg": errorMsg.map(JSONValue.string) ?? .string(""),
            "payUrl": payUrl.map(JSONValue.string) ?? .null,
        ]).encoded()
    }

    /// The absolute address to send the customer's browser to: a path is joined to the gateway's origin
    /// (and any base path), an absolute URL is passed through.
    public static func absolutePayURL(_ payUrl: String, gatewayBaseURL: String) -> String {
        if let parts = URLParts(payUrl), parts.scheme == "http" || parts.scheme == "https" { return payUrl }
        var base = gatewayBaseURL
        while base.hasSuffix("/") { base.removeLast() }
        if payUrl.hasPrefix("/") { return base + payUrl }
        return base + "/" + payUrl
    }
}

/// Answer of `/api/Payouts/Create`: `{error, errorMessage}`.
public struct PayoutCreateAnswer: Sendable, Hashable {
    public var error: GatewayResultCode
    public var errorMessage: String?

    public init(error: GatewayResultCode, errorMessage: String? = nil) {
        self.error = error
        self.errorMessage = errorMessage
    }

    public init(json bytes: some Collection<UInt8>) throws(GatewayAnswerError) {
        let object = try parseAnswerObject(bytes)
        guard let code = object.member(caseInsensitive: "error")?.scalarText, !code.isEmpty else {
            throw GatewayAnswerError("payout answer has no 'error' code")
        }
        self.error = GatewayResultCode(rawValue: code)
        self.errorMessage = object.member(caseInsensitive: "errorMessage")?.scalarText
    }

    public func encoded() -> [UInt8] {
        JSONValue.object(["error": .string(error.rawValue), "errorMessage": .string(errorMessage ?? "")]).encoded()
    }
}

/// An order's status as the gateway's query reports it.
public enum GatewayOrderStatus: Sendable, Hashable {
    /// 0: waiting for the customer (deposit) or for the pay-out.
    case waiting
    /// 1: paid (deposit) or paid out (payout).
    case paid
    /// 2: failed.
    case failed
    /// Any other number, kept as it came.
    case other(Int)

    public init(code: Int) {
        switch code {
        case 0: self = .waiting
        case 1: self = .paid
        case 2: self = .failed
        default: self = .other(code)
        }
    }

    public var code: Int {
        switch self {
        case .waiting: return 0
        case .paid: return 1
        case .failed: return 2
        case .other(let c): return c
        }
    }
}

/// Answer of `/api/Payments/Query` and `/api/Payouts/Query`: `{error, result: {Mrn, status}}`.
public struct QueryAnswer: Sendable, Hashable {
    public var error: GatewayResultCode
    public var mrn: String?
    public var status: GatewayOrderStatus?

    public init(error: GatewayResultCode, mrn: String? = nil, status: GatewayOrderStatus? = nil) {
        self.error = error
        self.mrn = mrn
        self.status = status
    }

    /// Reads the answer: names case-insensitive, `status` a number or a numeric string.
    public init(json bytes: some Collection<UInt8>) throws(GatewayAnswerError) {
        let object = try parseAnswerObject(bytes)
        guard let code = object.member(caseInsensitive: "error")?.scalarText, !code.isEmpty else {
            throw GatewayAnswerError("query answer has no 'error' code")
        }
        self.error = GatewayResultCode(rawValue: code)
        let result = object.member(caseInsensitive: "result")
        if let result, result.members != nil {
            self.mrn = result.member(caseInsensitive: "mrn")?.scalarText
            if let statusValue = result.member(caseInsensitive: "status"), !statusValue.isNull {
                guard let text = statusValue.scalarText?.trimmingASCIISpaces(), let n = Int(text) else {
                    throw GatewayAnswerError("query answer has a non-numeric 'status'")
                }
                self.status = GatewayOrderStatus(code: n)
            }
        } else if let result, !result.isNull {
            throw GatewayAnswerError("query answer's 'result' is not an object")
        }
        if self.error.isSuccess, self.status == nil {
            throw GatewayAnswerError("query answer is successful but has no 'status'")
        }
    }

    /// Encoded as the gateway does, with `Mrn` capitalised.
    public func encoded() -> [UInt8] {
        var result: JSONValue = .null
        if let status {
            result = .object(["Mrn": mrn.map(JSONValue.string) ?? .null, "status": .number(String(status.code))])
        }
        return JSONValue.object(["error": .string(error.rawValue), "result": result]).encoded()
    }
}

func parseAnswerObject(_ bytes: some Collection<UInt8>) throws(GatewayAnswerError) -> JSONValue {
    let value: JSONValue
    do {
        value = try JSONValue.parse(bytes)
    } catch {
        throw GatewayAnswerError("answer is not JSON (\(error.message))")
    }
    guard value.members != nil else { throw GatewayAnswerError("answer is not a JSON object") }
    return value
}

func lenientBool(_ value: JSONValue) -> Bool? {
    switch value {
    case .bool(let b): return b
    case .string(let s):
        switch s.asciiLowercased() {
        case "true": return true
        case "false": return false
        default: return nil
        }
    case .number(let n): return n == "1" ? true : (n == "0" ? false : nil)
    default: return nil
    }
}

extension String {
    func trimmingASCIISpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " { s.removeFirst() }
        while let l = s.last, l == " " { s.removeLast() }
        return String(s)
    }
}
