import GatewayProtocol

/// How the order rules are tuned (from the sidecar's configuration).
public struct OrderPolicy: Sendable, Hashable {
    /// The first query of an unsettled order follows its create by this much; later ones by 2, 5, 15, then
    /// 60 times it (PAYSIDECAR_RECONCILE_AFTER).
    public var reconcileAfter: Millis
    /// After this long from its creation an unsettled order is no longer queried, and flagged
    /// (PAYSIDECAR_RECONCILE_HORIZON).
    public var horizon: Millis
    /// An unknown payout the gateway's queries do not know is re-sent only once such answers span this long
    /// since its first send (PAYSIDECAR_RESEND_AFTER).
    public var resendAfter: Millis
    /// A create still marked as on its way after this long was interrupted (its process died): the
    /// gateway call's own timeout plus a margin.
    public var sendDeadline: Millis
    /// Whether a validly signed callback for an mrn this sidecar never created is stored (flagged) or refused.
    public var acceptUnknownOrderCallbacks: Bool

    public init(reconcileAfter: Millis, horizon: Millis, resendAfter: Millis, sendDeadline: Millis, acceptUnknownOrderCallbacks: Bool) {
        self.reconcileAfter = reconcileAfter
        self.horizon = horizon
        self.resendAfter = resendAfter
        self.sendDeadline = sendDeadline
        self.acceptUnknownOrderCallbacks = acceptUnknownOrderCallbacks
    }

    /// After the first query, the next follow by these multiples of `reconcileAfter`.
    public static let backoff: [Int64] = [2, 5, 15, 60]
}

/// A create a caller asked for, validated and normalized.
public struct CreateRequest: Sendable, Hashable {
    public var kind: OrderKind
    public var mrn: String
    public var amount: String
    public var channelId: Int?
    public var notifyUrl: String?
    /// The normalized request (JSON text) and its fingerprint.
    public var request: String
    public var fingerprint: String
    /// The W3C `traceparent` the create's webhooks will carry (the caller's trace); not part of the fingerprint, so
    /// a retry from another trace is still the same request.
    public var traceParent: String?

    public init(kind: OrderKind, mrn: String, amount: String, channelId: Int?, notifyUrl: String?, request: String, fingerprint: String,
                traceParent: String? = nil) {
        self.kind = kind
        self.mrn = mrn
        self.amount = amount
        self.channelId = channelId
        self.notifyUrl = notifyUrl
        self.request = request
        self.fingerprint = fingerprint
        self.traceParent = traceParent
    }
}

/// What sending a create (or re-sending a payout) came to, in the gateway's terms.
public enum CreateReport: Sendable, Hashable {
    /// Page mode: the signed form was handed to the caller; nothing was sent.
    case formIssued
    /// The gateway took it.
    case accepted
    /// The gateway refused it with this code (for deposits, the code its `errorMsg` starts with, or the
    /// whole message when it names none).
    case refused(code: String)
    /// No answer the sidecar could read. `requestSent`: whether the request may have reached the gateway;
    /// `code` names the failure (`gateway_timeout`, `gateway_unavailable`, `gateway_bad_response`).
    case failed(requestSent: Bool, code: String)
}

/// A verified callback: the gateway says the order was paid (deposit) or paid out (payout).
public struct CallbackReport: Sendable, Hashable {
    public var kind: OrderKind
    public var mrn: String
    /// What was paid: the deposit's `amount`, the payout's `amount`.
    public var amount: String
    /// A deposit's `originAmount` (the amount ordered, as the gateway has it).
    public var originAmount: String?
    /// A deposit's `channel`.
    public var channelId: Int?
    /// The raw form and where it came from, kept with the receipt.
    public var rawBody: String
    public var sourceAddress: String?

    public init(kind: OrderKind, mrn: String, amount: String, originAmount: String? = nil, channelId: Int? = nil, rawBody: String, sourceAddress: String?) {
        self.kind = kind
        self.mrn = mrn
        self.amount = amount
        self.originAmount = originAmount
        self.channelId = channelId
        self.rawBody = rawBody
        self.sourceAddress = sourceAddress
    }
}

/// What a query of the gateway answered.
public enum QueryReport: Sendable, Hashable {
    /// The gateway knows the order: 0 waiting, 1 paid, 2 failed, or another number.
    case status(GatewayOrderStatus)
    /// `object_not_found`: the gateway does not know the order.
    case notFound
    /// Another error code.
    case refused(code: String)
    /// No readable answer.
    case noAnswer
}

/// Who asked the gateway: the reconciler follows its schedule; a caller's `GET` only learns outcomes.
public enum QueryOrigin: Sendable, Hashable {
    case reconciler
    case caller
}

/// A callback as received, stored with the order change it caused (or as a duplicate).
public struct CallbackReceipt: Sendable, Hashable {
    public var kind: OrderKind
    public var mrn: String
    /// The outcome the callback reported (callbacks only ever report success).
    public var outcome: OrderState
    public var duplicate: Bool
    public var body: String
    public var sourceAddress: String?
    public var at: Millis

    public init(kind: OrderKind, mrn: String, outcome: OrderState, duplicate: Bool, body: String, sourceAddress: String?, at: Millis) {
        self.kind = kind
        self.mrn = mrn
        self.outcome = outcome
        self.duplicate = duplicate
        self.body = body
        self.sourceAddress = sourceAddress
        self.at = at
    }
}

/// Everything one decision changes in the journal, written in one transaction (or not at all).
public struct JournalWrite: Sendable, Hashable {
    public enum OrderChange: Sendable, Hashable {
        /// A new order; refused if the (kind, mrn) is journaled already.
        case insert(Order)
        /// The order as it is now; refused unless the journal still holds `expectedVersion`.
        case update(Order, expectedVersion: Int)
        /// The order goes (pruning); refused unless the journal still holds `expectedVersion`.
        case delete(kind: OrderKind, mrn: String, expectedVersion: Int)
    }

    public var order: OrderChange?
    /// A tombstone to keep (inserted, or replacing the one there).
    public var tombstone: Tombstone?
    public var events: [OutboxDraft]
    public var receipt: CallbackReceipt?
    /// Whether the commit must reach the disk before it returns (what the gateway is told `success` about).
    public var durable: Bool

    public init(order: OrderChange? = nil, tombstone: Tombstone? = nil, events: [OutboxDraft] = [], receipt: CallbackReceipt? = nil, durable: Bool = false) {
        self.order = order
        self.tombstone = tombstone
        self.events = events
        self.receipt = receipt
        self.durable = durable
    }
}
