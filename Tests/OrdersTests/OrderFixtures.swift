import GatewayProtocol
@testable import Orders

/// Orders in each state the journal can hold, as the machine would have left them, for the tests.
enum Fixture: String, CaseIterable, Sendable {
    case none, sending, pending, unknown, rejected, rejectedNotSent, succeeded, failed, tombstoneSucceeded, tombstoneFailed

    static let now: Millis = 1_000_000
    static let policy = OrderPolicy(reconcileAfter: 60_000, horizon: 48 * 3_600_000, resendAfter: 600_000, sendDeadline: 40_000,
                                    acceptUnknownOrderCallbacks: true)

    static func request(_ kind: OrderKind = .payout, fingerprint: String = "fp") -> CreateRequest {
        CreateRequest(kind: kind, mrn: "M-1", amount: "500", channelId: kind == .deposit ? 2 : nil, notifyUrl: nil,
                      request: #"{"mrn":"M-1","amount":"500","bankName":"b","accountName":"a","accountNumber":"1","notifyUrl":null}"#, fingerprint: fingerprint)
    }

    /// What the journal holds in this state, for an order of `kind` created at 0.
    func journaled(_ kind: OrderKind = .payout) -> Journaled {
        let request = Fixture.request(kind)
        var order = Order(kind: kind, mrn: request.mrn, amount: request.amount, channelId: request.channelId, state: .sending,
                          request: request.request, fingerprint: request.fingerprint, createdAt: 0)
        order.version = 3
        func sent(_ verdict: CreateVerdict, _ status: Int, code: String? = nil) {
            order.answer = RecordedAnswer(status: status, body: #"{"answer":\#(status)}"#)
            order.verdict = verdict
            order.gatewayCode = code
            if verdict != .notSent {
                order.sendCount = 1
                order.firstSentAt = 0
            }
        }
        switch self {
        case .none:
            return .nothing
        case .sending:
            order.sendingSince = Fixture.now - 1000
            order.nextQueryAt = Fixture.now - 1000 + Fixture.policy.sendDeadline
        case .pending:
            sent(.accepted, 202)
            order.state = .pending
            order.nextQueryAt = Fixture.now
        case .unknown:
            sent(.unknown, 504, code: "gateway_timeout")
            order.state = .unknown
            order.nextQueryAt = Fixture.now
        case .rejected:
            sent(.rejected, 422, code: "insufficient_balance")
            order.state = .rejected
            order.closedAt = 10
        case .rejectedNotSent:
            sent(.notSent, 502, code: "not_sent")
            order.state = .rejected
            order.closedAt = 10
        case .succeeded:
            sent(.accepted, 202)
            order.state = .succeeded
            order.settledSource = .callback
            order.paidAmount = "500"
            order.settledAt = 20
            order.closedAt = 20
            order.settlementEventID = EventFactory.settlementID(order)
        case .failed:
            // Its create timed out; a query found it failed.
            sent(.unknown, 504, code: "gateway_timeout")
            order.state = .failed
            order.settledSource = .query
            order.settledAt = 20
            order.closedAt = 20
            order.settlementEventID = EventFactory.settlementID(order)
        case .tombstoneSucceeded, .tombstoneFailed:
            return .tombstone(Tombstone(kind: kind, mrn: request.mrn, outcome: self == .tombstoneSucceeded ? .succeeded : .failed,
                                        settlementEventID: "evt_x", fingerprint: request.fingerprint, flag: nil, prunedAt: 30))
        }
        return .order(order)
    }
}

/// A short description of what the journal holds: the order's state, `tombstone:<outcome>`, or `nothing`.
func describe(_ journaled: Journaled) -> String {
    switch journaled {
    case .nothing: return "nothing"
    case .order(let order): return order.state.rawValue
    case .tombstone(let t): return "tombstone:\(t.outcome.rawValue)"
    }
}

/// The action's name as the table writes it: `respond:unknown`, `report:failed`, `refuse:unknown_order`.
func describe(_ action: OrderAction) -> String {
    switch action {
    case .none: return "none"
    case .send: return "send"
    case .resend: return "resend"
    case .query: return "query"
    case .replay: return "replay"
    case .report(let state): return "report:\(state.rawValue)"
    case .conflict: return "conflict"
    case .inProgress: return "inProgress"
    case .outcomeUnknown: return "outcomeUnknown"
    case .respond(let verdict): return "respond:\(verdict.rawValue)"
    case .acknowledge: return "acknowledge"
    case .refuse(let reason, _): return "refuse:\(reason)"
    }
}
