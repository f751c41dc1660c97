import GatewayProtocol
import Orders

/// What a journal write came to.
public enum CommitResult: Sendable, Hashable {
    case committed
    /// The journal no longer holds what the decision was based on (another writer was first): nothing was
    /// written. This is what it holds now; decide again from it.
    case conflict(Journaled)
}

/// A ledger operation that failed; the message names no secret.
public struct LedgerError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The sidecar's durable state: the order journal and its tombstones, callback receipts, the webhook outbox
/// and its delivery attempts, and refused callbacks.
///
/// A ledger persists plain values and knows no order rules: `OrderStateMachine` decides, `commit` writes a
/// decision in one transaction, refusing it when the order changed since it was read (its version), so two
/// writers (two tasks, two replicas) never both act on one state. Claiming is lease based (`claimDueEvents`,
/// `claimDueOrders` mark rows as taken until a time), so an implementation on a shared database can claim with
/// `SELECT ... FOR UPDATE SKIP LOCKED` without callers changing. Outbox claims name their owner, one per ledger
/// instance (`claimOwner`, in effect the process): the owner renews them while its attempts run
/// (`renewEventClaims`), and an attempt that comes back after its claim passed to another owner is recorded without
/// deciding the event's next step (`finishAttempt`, `AttemptSettlement`).
public protocol Ledger: LedgerBrowsing {
    /// True when the storage answers.
    func isHealthy() async -> Bool

    /// Background housekeeping of the storage (for SQLite, copying the write-ahead log into the database
    /// file), called every 100 ms or so, so that requests never wait for it.
    func checkpoint() async throws -> (logPages: Int, checkpointedPages: Int)

    // MARK: The journal

    /// The order journaled for (kind, mrn), its tombstone if it was pruned, or nothing.
    func journaled(_ kind: OrderKind, _ mrn: String) async throws -> Journaled
    /// Writes a decision in one transaction: the order change (checked against its version), the tombstone,
    /// the events (an event whose id is already in the outbox is the same fact: kept once), the receipt.
    /// Durable writes reach the disk before this returns.
    func commit(_ write: JournalWrite) async throws -> CommitResult
    /// Orders whose `nextQueryAt` has come, each claimed until `now + lease` (its `nextQueryAt` moved there and
    /// its version bumped): a second caller does not get them meanwhile.
    func claimDueOrders(now: Millis, lease: Millis, limit: Int) async throws -> [Order]
    /// Orders that became final (`closedAt`) before `before`, oldest first: candidates for pruning.
    func closedOrders(before: Millis, limit: Int) async throws -> [Order]
    /// Deletes tombstones older than `before`; returns how many went.
    func pruneTombstones(before: Millis) async throws -> Int
    /// Orders carrying a flag, most recently changed first.
    func flaggedOrders(limit: Int) async throws -> [Order]

    // MARK: Refused callbacks

    func recordRejection(_ rejection: RejectedCallback) async throws
    func rejections(limit: Int) async throws -> [RejectedCallback]

    // MARK: The outbox

    /// Who this ledger's outbox claims belong to: unique per instance, so per process (host, pid and a random part,
    /// readable in the database's `claimed_by` column).
    var claimOwner: String { get }
    /// Claims up to `limit` pending events that are due at `now` and not claimed (or whose claim ran out), for
    /// `claimOwner` until `now + lease`, leaving out the ids in `excluding` (the caller's own in-flight events).
    func claimDueEvents(now: Millis, lease: Millis, limit: Int, excluding: Set<String>) async throws -> [OutboxEvent]
    /// Extends this owner's claims on `ids` to `until`, also claims whose lease ran out as long as nobody else took
    /// the event since; returns the ids renewed. An id missing from the answer is no longer this owner's to decide:
    /// another process claimed it, or it was delivered, failed or redelivered meanwhile.
    func renewEventClaims(ids: Set<String>, until: Millis) async throws -> Set<String>
    /// Records an attempt (always: it happened) and, when it was made under the event's current claim, what follows,
    /// releasing the claim; an attempt whose claim passed on only joins the history, a 2xx still marking the event
    /// delivered (`AttemptSettlement`). One transaction, so two owners finishing the same attempt at once are
    /// settled one after the other.
    @discardableResult
    func finishAttempt(_ attempt: DeliveryAttempt, next: NextStep) async throws -> AttemptRecorded
    /// Marks an event failed without an attempt (e.g. it has nowhere to go).
    func failEvent(id: String, reason: String, at: Millis) async throws
    /// The earliest time a pending event becomes due, if any.
    func nextDueTime() async throws -> Millis?

    func events(_ query: EventQuery) async throws -> [OutboxEvent]
    func event(id: String) async throws -> (OutboxEvent, [DeliveryAttempt])?
    /// Queues an event again from now, with a fresh retry schedule. Nil if there is no such event.
    func redeliver(id: String, at: Millis) async throws -> OutboxEvent?
    /// Deletes delivered events (and their attempts) delivered before `before`; pending and failed ones stay.
    func pruneDeliveredEvents(before: Millis) async throws -> Int

    /// Counts for the metrics endpoint: outbox depth and age, reconciliation backlog, flagged orders.
    func statistics(now: Millis) async throws -> LedgerStatistics

    /// Calls `onQueued` whenever any process sharing this storage may have queued outbox events, until the
    /// calling task is cancelled; also once each time it (re)starts listening, for what was queued meanwhile.
    /// A hint only: callers keep polling, since a hint can be lost (e.g. while the database is unreachable).
    func followOutbox(_ onQueued: @escaping @Sendable () -> Void) async
}

extension Ledger {
    /// A storage only one process writes has no news from elsewhere: that process wakes its own dispatcher.
    public func followOutbox(_ onQueued: @escaping @Sendable () -> Void) async {}
}

/// What an operator watches in the durable state (exported as gauges on `/metrics`).
public struct LedgerStatistics: Sendable, Hashable {
    /// Events not yet delivered and still being retried.
    public var pendingEvents: Int
    /// When the oldest of those was created; nil when there is none.
    public var oldestPendingEventAt: Millis?
    /// Events that exhausted their retries (or were refused with 410) and wait for a redelivery.
    public var failedEvents: Int
    /// Orders whose next gateway query is already due.
    public var reconcileDue: Int
    /// Orders still followed by the reconciler.
    public var reconcileOpen: Int
    /// Orders flagged for a person.
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

/// What the operator's console reads (the order views and the activity chart): plain reads, no rules.
public protocol LedgerBrowsing: Sendable {
    /// Orders the reconciler still follows (`nextQueryAt` set), next due first.
    func openOrders(limit: Int) async throws -> [Order]
    /// Orders that became final (`closedAt`) most recently, newest first.
    func recentlyClosedOrders(limit: Int) async throws -> [Order]
    /// Per `bucket` milliseconds since `since`: orders created, orders settled, delivery attempts that failed.
    func activity(since: Millis, bucket: Millis) async throws -> [ActivityBucket]
}

/// One bar of the console's chart.
public struct ActivityBucket: Sendable, Hashable {
    /// The bucket's start.
    public var start: Millis
    public var creates: Int
    public var settlements: Int
    public var failedDeliveries: Int

    public init(start: Millis, creates: Int, settlements: Int, failedDeliveries: Int) {
        self.start = start
        self.creates = creates
        self.settlements = settlements
        self.failedDeliveries = failedDeliveries
    }

    /// Every bucket from `since` to `now`, counts filled from `counted` (bucket start → counts), zero elsewhere.
    public static func series(since: Millis, now: Millis, bucket: Millis, _ counted: [Millis: (Int, Int, Int)]) -> [ActivityBucket] {
        let first = since - since % bucket
        return stride(from: first, through: now, by: Int(bucket)).map { start in
            let c = counted[start] ?? (0, 0, 0)
            return ActivityBucket(start: start, creates: c.0, settlements: c.1, failedDeliveries: c.2)
        }
    }
}
