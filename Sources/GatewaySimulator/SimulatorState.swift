import ConfigurationValues
import GatewayProtocol

/// One order the simulator holds, deposit or payout. mrn is unique across both kinds.
struct SimOrder: Sendable {
    var kind: OrderKind
    var id: String
    var mrn: String
    var amountText: String
    var amountFen: Int64
    var callbackUrl: String
    var status: GatewayOrderStatus = .waiting
    // Deposit only.
    var channelId: Int?
    var returnUrl: String?
    var payer: String?
    var paidFen: Int64?
    // Payout only.
    var bankName: String?
    var accountName: String?
    var accountNumber: String?
    var createdAt: ContinuousClock.Instant
    /// How many creates were booked under this mrn: 1, unless a `hold` fault let a second create through the
    /// mrn check (a payout booked twice is paid twice, and the balance is debited for each).
    var bookings = 1

    func json() -> JSONValue {
        var members: [JSONValue.JSONMember] = [
            .init("kind", .string(kind.rawValue)),
            .init("id", .string(id)),
            .init("mrn", .string(mrn)),
            .init("amount", .string(amountText)),
            .init("status", .number(String(status.code))),
            .init("statusText", .string(statusText)),
            .init("callbackUrl", .string(callbackUrl)),
            .init("bookings", .number(String(bookings))),
        ]
        if let channelId { members.append(.init("channelId", .number(String(channelId)))) }
        if let returnUrl { members.append(.init("returnUrl", .string(returnUrl))) }
        if let payer { members.append(.init("payer", .string(payer))) }
        if let paidFen { members.append(.init("paidAmount", .string(AmountText.yuanText(fen: paidFen)))) }
        if let bankName { members.append(.init("bankName", .string(bankName))) }
        if let accountName { members.append(.init("accountName", .string(accountName))) }
        if let accountNumber { members.append(.init("accountNumber", .string(accountNumber))) }
        return .object(members)
    }

    var statusText: String {
        switch status {
        case .waiting: return "waiting"
        case .paid: return kind == .deposit ? "paid" : "paid_out"
        case .failed: return "failed"
        case .other(let n): return "status_\(n)"
        }
    }
}

/// A fault to inject. HTTP faults match a gateway path exactly; callback faults use path `callback`.
struct Fault: Sendable {
    enum Kind: String, Sendable, CaseIterable {
        /// Answer only after `value` (milliseconds or a duration like `2s`); the request is still processed.
        case delay
        /// Answer with HTTP status `value` and a short body, without processing the request.
        case status
        /// Process the request, then close the connection without answering. Callbacks: the next callback is
        /// never sent (no retries).
        case drop
        /// Process the request, then answer 200 with a body that is not JSON.
        case garbage
        /// Answer 200 with `value` (any JSON document) without processing: e.g. an error code to provoke.
        case answer
        /// Process the request (the order is booked), then answer 200 with `value` instead of the real answer:
        /// a gateway that says "refused" (e.g. `system_busy`) for a create it took.
        case processedAnswer = "processed_answer"
        /// Creates only: the create is booked, but becomes visible to queries and to the mrn check only after
        /// `value` (a duration), then answered. Meanwhile a second create with the same mrn is not refused and
        /// is booked too: a gateway whose mrn check is not atomic.
        case hold
        /// Callbacks only: send each callback twice.
        case duplicate
        /// Callbacks only: send a callback with a wrong signature (then, on retry, a correct one).
        case badSignature = "bad_signature"
    }

    var path: String
    var kind: Kind
    var value: JSONValue?
    /// How many more times it fires; nil = until cleared.
    var remaining: Int?

    var isCallbackFault: Bool { path == "callback" }

    /// The duration of a `delay` or `hold` fault.
    var delay: Duration? {
        guard kind == .delay || kind == .hold, let text = value?.scalarText else { return nil }
        return DurationText.parse(text)
    }

    /// How `GET /_sim/requests` names the fault a request met.
    var summary: String {
        guard let value, !value.isNull else { return kind.rawValue }
        return "\(kind.rawValue) \(value.scalarText ?? value.jsonText)"
    }

    func json() -> JSONValue {
        .object([
            "path": .string(path), "kind": .string(kind.rawValue), "value": value ?? .null,
            "count": remaining.map { .number(String($0)) } ?? .null,
        ])
    }
}

/// One callback attempt, for `GET /_sim/callbacks`.
struct CallbackAttempt: Sendable {
    var kind: OrderKind
    var mrn: String
    var url: String
    var attempt: Int
    var body: String
    var status: Int?
    var responseBody: String?
    var error: String?
    var accepted: Bool
    var at: String

    func json() -> JSONValue {
        .object([
            "kind": .string(kind.rawValue), "mrn": .string(mrn), "url": .string(url), "attempt": .number(String(attempt)),
            "body": .string(body), "status": status.map { .number(String($0)) } ?? .null,
            "responseBody": responseBody.map(JSONValue.string) ?? .null, "error": error.map(JSONValue.string) ?? .null,
            "accepted": .bool(accepted), "at": .string(at),
        ])
    }
}

/// One request the simulator received on a gateway endpoint, for `GET /_sim/requests`.
struct ReceivedRequest: Sendable {
    var method: String
    var path: String
    var query: String
    var contentType: String
    var body: String
    var at: String
    /// The fault this request met, if any (e.g. `hold 2s`, `drop`).
    var fault: String?
    /// When its answer was handed back (after any injected delay); nil while it is being answered. With `at`, the
    /// time the request was in the gateway's hands: what tells whether two callers had the same order in hand at once.
    var answeredAt: String? = nil
    /// Numbers the requests in arrival order, to find one again when it is answered.
    var number = 0

    func json() -> JSONValue {
        .object([
            "method": .string(method), "path": .string(path), "query": .string(query),
            "contentType": .string(contentType), "body": .string(body), "at": .string(at),
            "fault": fault.map(JSONValue.string) ?? .null,
            "answeredAt": answeredAt.map(JSONValue.string) ?? .null,
        ])
    }
}

/// Everything the simulator remembers, under one lock. Pure bookkeeping; no I/O here.
struct SimulatorState: Sendable {
    var balanceFen: Int64
    var orders: [String: SimOrder] = [:]
    var orderIDs: [String: String] = [:]  // order id -> mrn
    var nextOrderNumber = 1
    var faults: [Fault] = []
    var callbackLog: [CallbackAttempt] = []
    var received: [ReceivedRequest] = []
    /// How many entries `callbackLog` and `received` keep (the newest).
    var logLimit: Int
    var receivedCount = 0

    init(balanceFen: Int64, logLimit: Int = 10_000) {
        self.balanceFen = balanceFen
        self.logLimit = logLimit
    }

    mutating func newOrderID() -> String {
        defer { nextOrderNumber += 1 }
        return "SIM\(1_000_000 + nextOrderNumber)"
    }

    /// Takes the first matching fault for `path` (and kind, if given), counting it down.
    mutating func takeFault(path: String, kinds: Set<Fault.Kind>? = nil) -> Fault? {
        guard let index = faults.firstIndex(where: { $0.path == path && (kinds?.contains($0.kind) ?? true) }) else { return nil }
        let fault = faults[index]
        if let remaining = fault.remaining {
            if remaining <= 1 { faults.remove(at: index) } else { faults[index].remaining = remaining - 1 }
        }
        return fault
    }

    /// Logs `request`; returns its number for `answered`.
    @discardableResult
    mutating func record(_ request: ReceivedRequest) -> Int {
        receivedCount += 1
        var numbered = request
        numbered.number = receivedCount
        received.append(numbered)
        if received.count > logLimit { received.removeFirst(received.count - logLimit) }
        return receivedCount
    }

    /// Notes when request `number` was answered (searched from the newest: it is recent).
    mutating func answered(_ number: Int, at time: String) {
        if let index = received.lastIndex(where: { $0.number == number }) { received[index].answeredAt = time }
    }

    mutating func record(_ attempt: CallbackAttempt) {
        callbackLog.append(attempt)
        if callbackLog.count > logLimit { callbackLog.removeFirst(callbackLog.count - logLimit) }
    }

    /// Books `order` (a new one, or one more booking of its mrn), as a create's last step.
    ///
    /// A create is normally booked in the same critical section as its mrn check. Under a `hold` fault it is
    /// booked only when the hold ends: if another create with the same mrn was booked meanwhile, this is a second
    /// booking of that mrn (the gateway's check was not atomic). A booking that lands on an order already settled
    /// takes its outcome: a failed payout refunds it at once.
    @discardableResult
    mutating func book(_ order: SimOrder) -> SimOrder {
        guard var existing = orders[order.mrn] else {
            orders[order.mrn] = order
            orderIDs[order.id] = order.mrn
            return order
        }
        existing.bookings += 1
        if existing.kind == .payout, order.kind == .payout, existing.status == .failed {
            balanceFen += order.amountFen
        }
        orders[order.mrn] = existing
        return existing
    }

    enum SettleError: Error { case notFound, wrongKind, alreadySettled(GatewayOrderStatus) }

    /// Settles an order; returns the order after the change. Payout failure refunds; deposit payment credits.
    mutating func settle(mrn: String, kind: OrderKind, paid: Bool, paidFen: Int64? = nil) throws(SettleError) -> SimOrder {
        guard var order = orders[mrn] else { throw .notFound }
        guard order.kind == kind else { throw .wrongKind }
        guard order.status == .waiting else { throw .alreadySettled(order.status) }
        order.status = paid ? .paid : .failed
        switch (kind, paid) {
        case (.deposit, true):
            let fen = paidFen ?? order.amountFen
            order.paidFen = fen
            balanceFen += fen
        case (.payout, false):
            balanceFen += order.amountFen * Int64(order.bookings)  // the held amount of every booking is released
        default:
            break
        }
        orders[mrn] = order
        return order
    }
}
