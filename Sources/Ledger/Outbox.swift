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

/// What `Ledger.finishAttempt` made of an attempt.
public enum AttemptRecorded: Sendable, Hashable {
    /// The attempt was the event's current one: its next step is the event's now.
    case applied
    /// The attempt's claim had passed on (its lease ran out and another process claimed the event, or the event was
    /// redelivered or failed meanwhile): the attempt is in the event's history, a 2xx still marks the event
    /// delivered, and nothing else about the event changed, so two attempts at one slot count once.
    case superseded
}

/// How the outbox settles an attempt that comes back: the same rule in every backend, applied to the event's row
/// as it is when the attempt is recorded, inside the recording's transaction.
///
/// Claims are leases renewed while an attempt runs; a process that stalls (or loses the database) past its lease
/// may find, when its attempt comes back, that another process claimed the event and made the same attempt. Both
/// are recorded (each happened: the receiver saw two requests with one `webhook-id`), but only the attempt made
/// under the event's current claim decides what comes next. Otherwise the later of two finishes would count the
/// slot twice (advancing the retry schedule by an attempt nobody scheduled), release a claim another process holds
/// (letting a third start while it still delivers), or turn a delivered event into a failed one. A 2xx is the one
/// outcome that always counts: the receiver has the event, whoever sent it.
public struct AttemptSettlement: Sendable, Hashable {
    /// The event's row as the recording finds it.
    public struct Row: Sendable, Hashable {
        public var status: EventStatus
        public var attempts: Int
        public var claimedBy: String?

        public init(status: EventStatus, attempts: Int, claimedBy: String?) {
            self.status = status
            self.attempts = attempts
            self.claimedBy = claimedBy
        }
    }

    /// What to write to the event's row besides the attempt itself.
    public enum Change: Sendable, Hashable {
        /// The attempt's next step, `attempts` set to the attempt's number and the claim released.
        case apply(NextStep)
        /// Delivered by a superseded attempt: status `delivered`, `attempts` at least the attempt's number, no next
        /// attempt; a claim another process holds goes too (its attempt will come back superseded).
        case markDelivered
        /// Nothing: the attempt only joins the history.
        case none
    }

    public let recorded: AttemptRecorded
    public let change: Change

    /// Decides for `attempt`, made by the process whose claims carry `owner`, with `next` as its own next step.
    public init(row: Row, attempt: DeliveryAttempt, next: NextStep, owner: String) {
        let current = row.status == .pending && row.claimedBy == owner && row.attempts == attempt.attempt - 1
        if current {
            recorded = .applied
            change = .apply(next)
        } else {
            recorded = .superseded
            change = next == .delivered && row.status != .delivered ? .markDelivered : .none
        }
    }
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
