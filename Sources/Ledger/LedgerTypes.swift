/// Milliseconds since the Unix epoch: how the ledger stores every time.
public typealias Millis = Int64

/// An order's state in the journal.
public enum OrderState: String, Sendable, Hashable, CaseIterable {
    /// Journaled, the request is on its way to the gateway.
    case sending
    /// The gateway accepted it; waiting for the outcome.
    case pending
    /// The gateway refused it (see `gatewayCode`).
    case rejected
    /// Sent, but whether the gateway took it is not known.
    case unknown
    case succeeded
    case failed

    public var isSettled: Bool { self == .succeeded || self == .failed }
}

/// An order the sidecar created, as the ledger holds it.
public struct OrderRecord: Sendable, Hashable {
    /// `deposit` or `payout`.
    public var kind: String
    public var mrn: String
    /// The amount as sent (text, yuan).
    public var amount: String
    public var channelId: Int?
    public var notifyUrl: String?
    public var state: OrderState
    public var gatewayCode: String?
    /// `callback` or `query`, once settled.
    public var settledSource: String?
    public var paidAmount: String?
    /// Why the order needs a person's attention (e.g. a contradicting outcome), if it does.
    public var flag: String?
    public var createdAt: Millis
    public var updatedAt: Millis
    /// The normalized request (JSON) and its fingerprint: an identical retry has the same fingerprint.
    public var request: String?
    public var fingerprint: String?
    /// The answer given to the first call, replayed to identical retries.
    public var responseStatus: Int?
    public var responseBody: String?
    /// The last status the gateway reported for the order (0, 1, 2), from a query.
    public var lastGatewayStatus: Int?
    public var settledAt: Millis?
    /// When the reconciler next queries this order, and how many queries it has made.
    public var nextQueryAt: Millis?
    public var queryCount: Int = 0
    /// False for an order first seen in a callback or query, never created by this sidecar.
    public var known: Bool = true

    public init(kind: String, mrn: String, amount: String, channelId: Int?, notifyUrl: String?, state: OrderState,
                gatewayCode: String? = nil, settledSource: String? = nil, paidAmount: String? = nil, flag: String? = nil,
                createdAt: Millis, updatedAt: Millis, request: String? = nil, fingerprint: String? = nil, nextQueryAt: Millis? = nil) {
        self.kind = kind
        self.mrn = mrn
        self.amount = amount
        self.channelId = channelId
        self.notifyUrl = notifyUrl
        self.state = state
        self.gatewayCode = gatewayCode
        self.settledSource = settledSource
        self.paidAmount = paidAmount
        self.flag = flag
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.request = request
        self.fingerprint = fingerprint
        self.nextQueryAt = nextQueryAt
    }
}

/// What journaling a new create found.
public enum OrderBegin: Sendable, Hashable {
    /// The order is new and journaled as given.
    case inserted
    /// The mrn is already journaled; nothing was changed.
    case existing(OrderRecord)
}

/// A final outcome learned about an order, from a callback or a query. The one way an event is born.
public struct Settlement: Sendable {
    public var kind: String
    public var mrn: String
    public var succeeded: Bool
    /// `callback` or `query`.
    public var source: String
    /// The event's type, e.g. `deposit.succeeded`.
    public var eventType: String
    /// Builds the whole webhook body (JSON text) once the order, if any, is known.
    public var payload: @Sendable (_ order: OrderRecord?) -> String
    /// The amount actually paid, when the source says.
    public var paidAmount: String?
    /// The order's amount, for an order the sidecar never journaled (e.g. the callback's `originAmount`).
    public var orderAmount: String
    /// The callback's raw form body, kept with the receipt.
    public var rawBody: String?
    public var sourceAddress: String?
    public var at: Millis
    /// Checks the settlement against the journaled order, inside the transaction; a reason refuses it and
    /// nothing is written.
    public var check: @Sendable (_ order: OrderRecord?) -> (reason: String, detail: String)?

    public init(kind: String, mrn: String, succeeded: Bool, source: String, eventType: String, paidAmount: String?, orderAmount: String,
                rawBody: String?, sourceAddress: String?, at: Millis,
                check: @escaping @Sendable (OrderRecord?) -> (reason: String, detail: String)? = { _ in nil },
                payload: @escaping @Sendable (OrderRecord?) -> String) {
        self.kind = kind
        self.mrn = mrn
        self.succeeded = succeeded
        self.source = source
        self.eventType = eventType
        self.paidAmount = paidAmount
        self.orderAmount = orderAmount
        self.rawBody = rawBody
        self.sourceAddress = sourceAddress
        self.at = at
        self.check = check
        self.payload = payload
    }
}

/// What applying a settlement did.
public enum SettlementOutcome: Sendable, Hashable {
    /// The order moved to its final state and this event was queued.
    case emitted(eventID: String)
    /// The order already had this outcome: nothing new.
    case duplicate
    /// The order already had the other outcome: recorded and flagged, nothing emitted.
    case contradiction(existing: OrderState)
    /// The settlement's check refused it; nothing was written.
    case refused(reason: String, detail: String)
}

/// Where an outbox event stands.
public enum EventStatus: String, Sendable, Hashable, CaseIterable {
    case pending, delivered, failed
}

/// A webhook waiting in, or done with, the outbox. `id` is the `webhook-id`: the same on every attempt.
public struct OutboxEvent: Sendable, Hashable {
    public var id: String
    public var type: String
    public var kind: String
    public var mrn: String
    /// The webhook body, fixed when the event was created.
    public var body: String
    /// The order's own target, if it named one.
    public var notifyUrl: String?
    public var status: EventStatus
    public var attempts: Int
    /// Attempts made before the last redelivery: the retry schedule counts from here.
    public var scheduleBase: Int
    public var nextAttemptAt: Millis?
    public var lastError: String?
    public var createdAt: Millis
    public var deliveredAt: Millis?

    public init(id: String, type: String, kind: String, mrn: String, body: String, notifyUrl: String?, status: EventStatus, attempts: Int,
                scheduleBase: Int, nextAttemptAt: Millis?, lastError: String?, createdAt: Millis, deliveredAt: Millis?) {
        self.id = id
        self.type = type
        self.kind = kind
        self.mrn = mrn
        self.body = body
        self.notifyUrl = notifyUrl
        self.status = status
        self.attempts = attempts
        self.scheduleBase = scheduleBase
        self.nextAttemptAt = nextAttemptAt
        self.lastError = lastError
        self.createdAt = createdAt
        self.deliveredAt = deliveredAt
    }
}

/// One delivery attempt of an event.
public struct DeliveryAttempt: Sendable, Hashable {
    public var eventID: String
    public var attempt: Int
    public var url: String
    public var statusCode: Int?
    public var error: String?
    public var durationMillis: Int64
    public var at: Millis

    public init(eventID: String, attempt: Int, url: String, statusCode: Int?, error: String?, durationMillis: Int64, at: Millis) {
        self.eventID = eventID
        self.attempt = attempt
        self.url = url
        self.statusCode = statusCode
        self.error = error
        self.durationMillis = durationMillis
        self.at = at
    }
}

/// What to do with an event after an attempt.
public enum NextStep: Sendable, Hashable {
    case delivered
    case retry(at: Millis)
    case fail(reason: String)
}

/// A callback the sidecar refused.
public struct RejectedCallback: Sendable, Hashable {
    public var kind: String
    public var mrn: String?
    /// A stable code, e.g. `bad_signature`.
    public var reason: String
    public var detail: String
    public var sourceAddress: String
    public var body: String
    public var at: Millis

    public init(kind: String, mrn: String?, reason: String, detail: String, sourceAddress: String, body: String, at: Millis) {
        self.kind = kind
        self.mrn = mrn
        self.reason = reason
        self.detail = detail
        self.sourceAddress = sourceAddress
        self.body = body
        self.at = at
    }
}

/// Which events to list.
public struct EventQuery: Sendable, Hashable {
    public var status: EventStatus?
    public var type: String?
    public var mrn: String?
    /// Events created after this cursor (an event id), oldest first.
    public var after: String?
    public var limit: Int

    public init(status: EventStatus? = nil, type: String? = nil, mrn: String? = nil, after: String? = nil, limit: Int = 50) {
        self.status = status
        self.type = type
        self.mrn = mrn
        self.after = after
        self.limit = limit
    }
}

/// A ledger operation that failed; the message names no secret.
public struct LedgerError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The sidecar's durable state: the order journal, callback receipts, the webhook outbox and its delivery
/// attempts, and refused callbacks.
///
/// Every method is one transaction. Claiming is lease based (`claimDueEvents` marks events as taken until a
/// time), so an implementation on a shared database (PostgreSQL, several replicas) can claim with
/// `SELECT ... FOR UPDATE SKIP LOCKED` without callers changing.
public protocol Ledger: Sendable {
    /// True when the storage answers.
    func isHealthy() async -> Bool

    /// Background housekeeping of the storage (for SQLite, copying the write-ahead log into the database
    /// file), called every 100 ms or so, so that requests never wait for it.
    func checkpoint() async throws -> (logPages: Int, checkpointedPages: Int)

    /// Journals a new order, or returns the one already journaled under its mrn (changing nothing).
    func beginOrder(_ order: OrderRecord) async throws -> OrderBegin
    /// Takes over a journaled order whose earlier create never reached the gateway (`rejected` with
    /// `not_sent` or `not_created`) for a new attempt: back to `sending`. False if it is not in that state.
    func restartOrder(kind: String, mrn: String, at: Millis) async throws -> Bool
    /// Records what a create came to and the answer the caller got (replayed to identical retries).
    /// A settled order keeps its state.
    func finishCreate(kind: String, mrn: String, state: OrderState, gatewayCode: String?, responseStatus: Int, responseBody: String,
                      nextQueryAt: Millis?, at: Millis) async throws
    func order(kind: String, mrn: String) async throws -> OrderRecord?

    /// Orders `pending` or `unknown` whose next query is due.
    func ordersToReconcile(now: Millis, limit: Int) async throws -> [OrderRecord]
    /// Records a query's result for an unsettled order: the gateway's status (if it answered), a new state
    /// (e.g. `unknown` -> `pending` once the gateway knows the order), and when to query next (nil: stop).
    func recordQuery(kind: String, mrn: String, gatewayStatus: Int?, state: OrderState?, gatewayCode: String?, nextQueryAt: Millis?, flag: String?, at: Millis) async throws
    /// Deletes orders settled or refused before `before`, with their receipts; never an unsettled one.
    /// Returns how many orders went.
    func prune(before: Millis) async throws -> Int

    /// In one transaction: stores the receipt, moves the order to its final state and queues the event
    /// (or recognises a duplicate or a contradiction).
    func apply(_ settlement: Settlement, eventID: String) async throws -> SettlementOutcome

    func recordRejection(_ rejection: RejectedCallback) async throws
    func rejections(limit: Int) async throws -> [RejectedCallback]

    /// Claims up to `limit` pending events that are due at `now` and not claimed, until `now + lease`,
    /// leaving out the ids in `excluding` (the caller's own in-flight events).
    func claimDueEvents(now: Millis, lease: Millis, limit: Int, excluding: Set<String>) async throws -> [OutboxEvent]
    /// Records an attempt and what follows, releasing the claim.
    func finishAttempt(_ attempt: DeliveryAttempt, next: NextStep) async throws
    /// Marks an event failed without an attempt (e.g. it has nowhere to go).
    func failEvent(id: String, reason: String, at: Millis) async throws
    /// The earliest time a pending event becomes due, if any.
    func nextDueTime() async throws -> Millis?

    func events(_ query: EventQuery) async throws -> [OutboxEvent]
    func event(id: String) async throws -> (OutboxEvent, [DeliveryAttempt])?
    /// Queues an event again from now, with a fresh retry schedule. Nil if there is no such event.
    func redeliver(id: String, at: Millis) async throws -> OutboxEvent?

    /// Counts for the metrics endpoint: outbox depth and age, reconciliation backlog, flagged orders.
    func statistics(now: Millis) async throws -> LedgerStatistics
}

/// What an operator watches in the durable state (exported as gauges on `/metrics`).
public struct LedgerStatistics: Sendable, Hashable {
    /// Events not yet delivered and still being retried.
    public var pendingEvents: Int
    /// When the oldest of those was created; nil when there is none.
    public var oldestPendingEventAt: Millis?
    /// Events that exhausted their retries (or were refused with 410) and wait for a redelivery.
    public var failedEvents: Int
    /// Orders `pending` or `unknown` whose next gateway query is already due.
    public var reconcileDue: Int
    /// Orders `pending` or `unknown` still being queried.
    public var reconcileOpen: Int
    /// Orders flagged for a person (a contradiction, or unsettled past the reconcile horizon).
    public var flaggedOrders: Int

    public init(pendingEvents: Int, oldestPendingEventAt: Millis?, failedEvents: Int, reconcileDue: Int, reconcileOpen: Int, flaggedOrders: Int) {
        self.pendingEvents = pendingEvents
        self.oldestPendingEventAt = oldestPendingEventAt
        self.failedEvents = failedEvents
        self.reconcileDue = reconcileDue
        self.reconcileOpen = reconcileOpen
        self.flaggedOrders = flaggedOrders
    }
}
