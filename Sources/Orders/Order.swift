import GatewayProtocol

/// Where an order stands. Only `OrderStateMachine` moves an order from one state to another.
public enum OrderState: String, Sendable, Hashable, CaseIterable {
    /// Journaled; the create is on its way to the gateway.
    case sending
    /// The gateway accepted it; waiting for the outcome.
    case pending
    /// The gateway refused it, or it never reached the gateway (see `gatewayCode`).
    case rejected
    /// It may or may not exist at the gateway: followed by queries, never sent again blindly.
    case unknown
    case succeeded
    case failed

    /// Succeeded or failed: the outcome of the payment itself.
    public var isSettled: Bool { self == .succeeded || self == .failed }
}

/// What the first answer to a create said, kept so that a retry learns what is known now.
public enum CreateVerdict: String, Sendable, Hashable, CaseIterable {
    /// The gateway took it (or, in page mode, the signed form was handed out).
    case accepted
    /// The gateway refused it with a documented code: the order does not exist.
    case rejected
    /// It never left the sidecar (the connection was refused): safe to send again.
    case notSent = "not_sent"
    /// It may exist: timeout, connection lost after sending, 5xx, unreadable answer, an undocumented code,
    /// or `mrn_duplication` for an mrn journaled as new.
    case unknown
}

/// Why an order needs a person, kept on the order for good and sent to consumers as a `*.flagged` webhook.
public enum FlagCode: String, Sendable, Hashable, CaseIterable {
    /// An amount the gateway reported differs from the order's (or from what it reported before).
    case amountMismatch = "amount_mismatch"
    /// A deposit callback says the customer paid 0.
    case zeroAmount = "zero_amount"
    /// A deposit callback names another channel than the order's.
    case channelMismatch = "channel_mismatch"
    /// The gateway reported an outcome that contradicts one it (or the journal) gave before.
    case contradictingOutcome = "contradicting_outcome"
    /// A validly signed callback for an mrn this sidecar never created.
    case unknownOrder = "unknown_order"
    /// No outcome within PAYSIDECAR_RECONCILE_HORIZON: the sidecar stopped asking.
    case pastHorizon = "past_horizon"
    /// An outcome arrived for an order flagged `past_horizon`.
    case settledAfterHorizon = "settled_after_horizon"
    /// An unknown payout re-sent after the gateway kept saying `object_not_found` was refused.
    case resendRefused = "resend_refused"
    /// An unknown payout the gateway still does not know after its one automatic re-send.
    case resendUnresolved = "resend_unresolved"
    /// The gateway called the mrn a duplicate at create, yet its queries do not find the order.
    case duplicateMrnNotFound = "duplicate_mrn_not_found"
}

/// One flag raised on an order.
public struct OrderFlag: Sendable, Hashable {
    public var code: FlagCode
    /// What was contradicted, in words (amounts and sources included; never a secret).
    public var detail: String
    public var at: Millis

    public init(code: FlagCode, detail: String, at: Millis) {
        self.code = code
        self.detail = detail
        self.at = at
    }
}

/// Who told the sidecar an order's outcome.
public enum SettlementSource: String, Sendable, Hashable, CaseIterable {
    case callback
    case query
}

/// The answer the first call of a create got, replayed byte for byte to identical retries.
public struct RecordedAnswer: Sendable, Hashable {
    public var status: Int
    public var body: String

    public init(status: Int, body: String) {
        self.status = status
        self.body = body
    }
}

/// An order as the journal holds it: plain values, persisted as they are. The rules that change them are
/// `OrderStateMachine`'s.
public struct Order: Sendable, Hashable {
    public var kind: OrderKind
    public var mrn: String
    /// The amount as ordered (text, exactly as sent: yuan, up to two decimals for deposits).
    public var amount: String
    public var channelId: Int?
    /// The order's own webhook target, if it named one.
    public var notifyUrl: String?
    public var state: OrderState
    /// False for an order first seen in a callback, never created by this sidecar.
    public var createdBySidecar: Bool
    /// The normalized request (JSON) and its fingerprint: an identical retry has the same fingerprint.
    public var request: String?
    public var fingerprint: String?
    /// The answer the caller got, replayed to identical retries, and what it said.
    public var answer: RecordedAnswer?
    public var verdict: CreateVerdict?
    /// The gateway's code (or the sidecar's, e.g. `not_sent`, `interrupted`) behind the state, if any.
    public var gatewayCode: String?
    /// How many times a create for this mrn may have reached the gateway.
    public var sendCount: Int
    /// When the first create that may have reached the gateway was sent.
    public var firstSentAt: Millis?
    /// Set while a create (or re-send) is on its way: since when.
    public var sendingSince: Millis?
    /// Since when every query has answered `object_not_found` (nil once the gateway knew the order).
    public var notFoundSince: Millis?
    /// The last status a query reported (0, 1, 2, or another number).
    public var lastGatewayStatus: Int?
    /// The reconciler's queries since the create was last sent (the query schedule counts from here).
    public var queryCount: Int
    /// When the reconciler next looks at this order; nil when it does not.
    public var nextQueryAt: Millis?
    /// How the outcome became known, and when.
    public var settledSource: SettlementSource?
    public var settledAt: Millis?
    /// What the gateway says was paid; nil while only a query (which carries no amount) reported the outcome.
    public var paidAmount: String?
    /// The id of the one settlement event emitted for this order.
    public var settlementEventID: String?
    /// Every flag raised, oldest first.
    public var flags: [OrderFlag]
    public var createdAt: Millis
    public var updatedAt: Millis
    /// When the order became final (settled or refused); pruning counts from here.
    public var closedAt: Millis?
    /// Bumped by every write: a write based on an older version is refused (optimistic concurrency).
    public var version: Int
    /// The W3C `traceparent` of the create, copied to every event emitted for the order so that its webhooks
    /// continue the caller's trace. Carried, never interpreted.
    public var traceParent: String?

    public init(kind: OrderKind, mrn: String, amount: String, channelId: Int? = nil, notifyUrl: String? = nil, state: OrderState,
                createdBySidecar: Bool = true, request: String? = nil, fingerprint: String? = nil, createdAt: Millis, traceParent: String? = nil) {
        self.kind = kind
        self.mrn = mrn
        self.amount = amount
        self.channelId = channelId
        self.notifyUrl = notifyUrl
        self.state = state
        self.createdBySidecar = createdBySidecar
        self.request = request
        self.fingerprint = fingerprint
        self.answer = nil
        self.verdict = nil
        self.gatewayCode = nil
        self.sendCount = 0
        self.firstSentAt = nil
        self.sendingSince = nil
        self.notFoundSince = nil
        self.lastGatewayStatus = nil
        self.queryCount = 0
        self.nextQueryAt = nil
        self.settledSource = nil
        self.settledAt = nil
        self.paidAmount = nil
        self.settlementEventID = nil
        self.flags = []
        self.createdAt = createdAt
        self.updatedAt = createdAt
        self.closedAt = nil
        self.version = 0
        self.traceParent = traceParent
    }

    /// The most recent flag, if any.
    public var flag: OrderFlag? { flags.last }
    /// True once a callback (not only a query) reported the amount paid.
    public var amountConfirmed: Bool { paidAmount != nil }
}

/// What is left of a settled order after pruning: enough to recognise a replayed callback for it (and a
/// retried create with its mrn) for PAYSIDECAR_TOMBSTONE_RETENTION.
public struct Tombstone: Sendable, Hashable {
    public var kind: OrderKind
    public var mrn: String
    /// `succeeded` or `failed`.
    public var outcome: OrderState
    public var settlementEventID: String?
    public var fingerprint: String?
    /// The latest flag's code, if the order was flagged (a contradiction found later is added here).
    public var flag: FlagCode?
    public var prunedAt: Millis

    public init(kind: OrderKind, mrn: String, outcome: OrderState, settlementEventID: String?, fingerprint: String?, flag: FlagCode?, prunedAt: Millis) {
        self.kind = kind
        self.mrn = mrn
        self.outcome = outcome
        self.settlementEventID = settlementEventID
        self.fingerprint = fingerprint
        self.flag = flag
        self.prunedAt = prunedAt
    }
}

/// What the journal knows about one (kind, mrn).
public enum Journaled: Sendable, Hashable {
    case nothing
    case order(Order)
    /// The order was settled and pruned.
    case tombstone(Tombstone)
}
