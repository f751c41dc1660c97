import GatewayProtocol

/// What a caller asked for in `POST /v1/deposits`, validated.
struct DepositInput: Sendable {
    enum Mode: String, Sendable { case api, page }
    var mrn: String
    var amount: DepositAmount
    var channelId: Int
    var returnUrl: String
    var payer: String?
    var mode: Mode
    var notifyUrl: String?
}

/// What a caller asked for in `POST /v1/payouts`, validated.
struct PayoutInput: Sendable {
    var mrn: String
    var amount: PayoutAmount
    var bankName: String
    var accountName: String
    var accountNumber: String
    var notifyUrl: String?
}

/// Reads a JSON object's members, collecting every problem instead of stopping at the first.
struct FieldCollector {
    private var values: [String: JSONValue] = [:]
    private(set) var problems: [FieldProblem] = []

    init(_ members: [JSONValue.JSONMember], allowed: [String]) {
        for member in members {
            if values[member.name] != nil {
                problems.append(FieldProblem(field: member.name, message: "appears more than once"))
            } else if !allowed.contains(member.name) {
                problems.append(FieldProblem(field: member.name, message: "is not a known field (allowed: \(allowed.joined(separator: ", ")))"))
            } else if !member.value.isNull {
                values[member.name] = member.value
            }
        }
    }

    mutating func fail(_ field: String, _ message: String) {
        problems.append(FieldProblem(field: field, message: message))
    }

    mutating func check(_ problem: FieldProblem?) {
        if let problem { problems.append(problem) }
    }

    /// A required or optional string member.
    mutating func string(_ field: String, required: Bool = true) -> String? {
        guard let value = values[field] else {
            if required { fail(field, "is required") }
            return nil
        }
        guard let s = value.stringValue else {
            fail(field, "must be a string")
            return nil
        }
        return s
    }

    /// A member that may be a JSON number or a string; returns its exact text.
    mutating func numberText(_ field: String) -> String? {
        guard let value = values[field] else {
            fail(field, "is required")
            return nil
        }
        guard let text = value.scalarText else {
            fail(field, "must be a number or a string of digits")
            return nil
        }
        return text
    }

    var isValid: Bool { problems.isEmpty }
}

extension DepositInput {
    /// The request in canonical form: what an identical retry must match.
    var normalized: JSONValue {
        .object([
            "mrn": .string(mrn), "amount": .string(amount.text), "channelId": .number(String(channelId)), "returnUrl": .string(returnUrl),
            "payer": payer.map(JSONValue.string) ?? .null, "mode": .string(mode.rawValue), "notifyUrl": notifyUrl.map(JSONValue.string) ?? .null,
        ])
    }

    static let fields = ["mrn", "amount", "channelId", "returnUrl", "payer", "mode", "notifyUrl"]

    static func validate(_ members: [JSONValue.JSONMember]) -> Result<DepositInput, Problem> {
        var c = FieldCollector(members, allowed: fields)
        let mrn = c.string("mrn")
        if let mrn { c.check(FieldRules.mrn(mrn)) }

        var amount: DepositAmount?
        if let text = c.numberText("amount") {
            amount = DepositAmount(text)
            if amount == nil { c.fail("amount", DepositAmount.problem(text) ?? "is invalid") }
        }

        var channelId: Int?
        if let text = c.numberText("channelId") {
            if text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), text.count <= 4, let id = Int(text), Channel.withID(id) != nil {
                channelId = id
            } else {
                c.fail("channelId", "must be a channel id from GET /v1/channels (1 to \(Channel.all.count))")
            }
        }

        let returnUrl = c.string("returnUrl")
        if let returnUrl { c.check(FieldRules.absoluteURL("returnUrl", returnUrl)) }

        let payer = c.string("payer", required: false)
        if let payer { c.check(FieldRules.text("payer", payer, maxLength: 128)) }

        var mode = Mode.api
        if let text = c.string("mode", required: false) {
            if let m = Mode(rawValue: text) { mode = m } else { c.fail("mode", "must be \"api\" or \"page\"") }
        }

        let notifyUrl = c.string("notifyUrl", required: false)
        if let notifyUrl { c.check(FieldRules.absoluteURL("notifyUrl", notifyUrl)) }

        guard c.isValid, let mrn, let amount, let channelId, let returnUrl else { return .failure(.invalid(c.problems)) }
        return .success(DepositInput(mrn: mrn, amount: amount, channelId: channelId, returnUrl: returnUrl, payer: payer, mode: mode, notifyUrl: notifyUrl))
    }
}

extension PayoutInput {
    var normalized: JSONValue {
        .object([
            "mrn": .string(mrn), "amount": .string(amount.text), "bankName": .string(bankName), "accountName": .string(accountName),
            "accountNumber": .string(accountNumber), "notifyUrl": notifyUrl.map(JSONValue.string) ?? .null,
        ])
    }

    /// Rebuilds the input from its normalized form (the reconciler re-sends an unknown payout with it).
    init?(normalized text: String) {
        guard let value = try? JSONValue.parse(text), let mrn = value["mrn"]?.stringValue, let amount = value["amount"]?.stringValue.flatMap(PayoutAmount.init),
              let bankName = value["bankName"]?.stringValue, let accountName = value["accountName"]?.stringValue,
              let accountNumber = value["accountNumber"]?.stringValue else { return nil }
        self.init(mrn: mrn, amount: amount, bankName: bankName, accountName: accountName, accountNumber: accountNumber, notifyUrl: value["notifyUrl"]?.stringValue)
    }

    static let fields = ["mrn", "amount", "bankName", "accountName", "accountNumber", "notifyUrl"]

    static func validate(_ members: [JSONValue.JSONMember]) -> Result<PayoutInput, Problem> {
        var c = FieldCollector(members, allowed: fields)
        let mrn = c.string("mrn")
        if let mrn { c.check(FieldRules.mrn(mrn)) }

        var amount: PayoutAmount?
        if let text = c.numberText("amount") {
            amount = PayoutAmount(text)
            if amount == nil { c.fail("amount", PayoutAmount.problem(text) ?? "is invalid") }
        }

        let bankName = c.string("bankName")
        if let bankName { c.check(FieldRules.text("bankName", bankName, maxLength: 128)) }
        let accountName = c.string("accountName")
        if let accountName { c.check(FieldRules.text("accountName", accountName, maxLength: 128)) }
        let accountNumber = c.string("accountNumber")
        if let accountNumber { c.check(FieldRules.text("accountNumber", accountNumber, maxLength: 64)) }

        let notifyUrl = c.string("notifyUrl", required: false)
        if let notifyUrl { c.check(FieldRules.absoluteURL("notifyUrl", notifyUrl)) }

        guard c.isValid, let mrn, let amount, let bankName, let accountName, let accountNumber else { return .failure(.invalid(c.problems)) }
        return .success(PayoutInput(mrn: mrn, amount: amount, bankName: bankName, accountName: accountName, accountNumber: accountNumber, notifyUrl: notifyUrl))
    }
}
