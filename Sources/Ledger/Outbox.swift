import GatewayProtocol
import Orders

/// Where an outbox event stands.
public enum EventStatus: String, Sendable, Hashable, CaseIterable {
    case pending, delivered, failed
}

/// A webhook waiting in, or done with, the outbox. `id` is the `webhook-id`: the same on every attempt.
public struct OutboxEvent: Sendable, Hashable {
    public var id: String
    public var type: EventType
    public var kind: OrderKind
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
    /// The `traceparent` of the order's create: each attempt's span continues that trace, and the webhook carries it.
    public var traceParent: String?

    public init(id: String, type: EventType, kind: OrderKind, mrn: String, body: String, notifyUrl: String?, status: EventStatus, attempts: Int,
                scheduleBase: Int, nextAttemptAt: Millis?, lastError: String?, createdAt: Millis, deliveredAt: Millis?, traceParent: String? = nil) {
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
        self.traceParent = traceParent
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

/// Which events to list.
public struct EventQuery: Sendable, Hashable {
    public var status: EventStatus?
    public var type: EventType?
    public var mrn: String?
    /// Events created after this cursor (an event id), oldest first.
    public var after: String?
    public var limit: Int

    public init(status: EventStatus? = nil, type: EventType? = nil, mrn: String? = nil, after: String? = nil, limit: Int = 50) {
        self.status = status
        self.type = type
        self.mrn = mrn
        self.after = after
        self.limit = limit
    }
}

/// A callback the sidecar refused.
public struct RejectedCallback: Sendable, Hashable {
    public var kind: OrderKind
    public var mrn: String?
    /// A stable code, e.g. `bad_signature`.
    public var reason: String
    public var detail: String
    public var sourceAddress: String
    public var body: String
    public var at: Millis

    public init(kind: OrderKind, mrn: String?, reason: String, detail: String, sourceAddress: String, body: String, at: Millis) {
        self.kind = kind
        self.mrn = mrn
        self.reason = reason
        self.detail = detail
        self.sourceAddress = sourceAddress
        self.body = body
        self.at = at
    }
}
