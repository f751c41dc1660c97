import Foundation
import GRDB
import GatewayProtocol
import Orders

#if canImport(Glibc)
import Glibc
#endif

/// The embedded ledger: one SQLite file in WAL mode.
///
/// Every commit is safe against a crash of the process (WAL). Commits that acknowledge something to the
/// gateway (a callback's decision, `JournalWrite.durable`) are also durable against power loss by default
/// (`synchronous = FULL`: they wait for the WAL to reach the disk, and so make every earlier commit durable
/// too); they are grouped under load (`GroupCommit`). Journal writes of creates and delivery bookkeeping use
/// `synchronous = NORMAL`: a power loss may drop the last of them, which the gateway's own mrn uniqueness and
/// at-least-once delivery absorb. `durableCommits: false` makes callback commits `NORMAL` too: a callback
/// acknowledged with `success` could then be forgotten on a power loss. A SQLite database belongs to one
/// sidecar process at a time: a lock file next to it refuses a second one, which also lets a new process
/// release the claims a crashed one left behind.
public final class SQLiteLedger: Ledger {
    let pool: DatabasePool
    /// The hot write paths (creates, callbacks, webhook attempts) commit through here, in groups under load.
    let writes: GroupCommit
    public let path: String
    /// Whether commits that acknowledge something to the gateway (callbacks) wait for the disk.
    let durableCommits: Bool
    private let lockDescriptor: Int32
    /// A connection of its own for `checkpoint()`, so copying the log into the database never holds the writer.
    private let checkpointer: DatabaseQueue
    public let claimOwner = newClaimOwner()

    /// The log size (in 4 KiB pages) at which a commit copies the log into the database itself, fsyncs
    /// included. SQLite's default is 1,000 (a stall every few hundred creates); this is a backstop for a
    /// process that does not call `checkpoint()`: the server does so every 100 ms.
    public static let autoCheckpointPages = 10_000

    /// Keeps at most this many refused callbacks.
    public static let rejectionRetention = 10_000

    public init(path: String, durableCommits: Bool = true) throws {
        self.path = path
        self.durableCommits = durableCommits
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty, !FileManager.default.fileExists(atPath: directory) {
            throw LedgerError("the folder \(directory) does not exist")
        }
        let lockPath = path + ".lock"
        let fd = open(lockPath, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LedgerError("cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw LedgerError("\(path) is in use by another pay-sidecar process")
        }
        self.lockDescriptor = fd
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        let synchronous = durableCommits ? "FULL" : "NORMAL"
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(Self.autoCheckpointPages)")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            var checkpointing = Configuration()
            checkpointing.busyMode = .timeout(5)
            checkpointing.label = "checkpointer"
            checkpointer = try DatabaseQueue(path: path, configuration: checkpointing)
            writes = GroupCommit(pool: pool)
            try Self.migrator.migrate(pool)
            // This process holds the lock: claims in the file belong to a process that is gone. Outbox claims are
            // released; orders a dead process was sending become due now (not when their send deadline passes),
            // so the reconciler takes them up at once (the order rules call them interrupted).
            let now = nowMillis()
            try pool.write { db in
                try db.execute(sql: "UPDATE outbox_events SET claimed_until = NULL, claimed_by = NULL WHERE claimed_until IS NOT NULL")
                try db.execute(sql: """
                    UPDATE orders SET next_query_at = ?, version = version + 1
                    WHERE next_query_at IS NOT NULL AND next_query_at > ? AND sending_since IS NOT NULL
                    """, arguments: [now, now])
            }
        } catch {
            flock(fd, LOCK_UN)
            close(fd)
            throw LedgerError("cannot open the database \(path): \(error)")
        }
    }

    deinit {
        flock(lockDescriptor, LOCK_UN)
        close(lockDescriptor)
    }

    /// Copies what the write-ahead log holds into the database file (a `PASSIVE` checkpoint: it never waits
    /// for, nor blocks, the writer or the readers), from a connection of its own. Called in the background,
    /// it keeps commits from doing it themselves, which made every few hundredth create wait for the disk.
    /// Returns the log's size and how much of it is now in the database, in pages.
    @discardableResult
    public func checkpoint() async throws -> (logPages: Int, checkpointedPages: Int) {
        let result = try await checkpointer.writeWithoutTransaction { db in try db.checkpoint(.passive) }
        return (result.walFrameCount, result.checkpointedFrameCount)
    }

    public func isHealthy() async -> Bool {
        (try? await pool.read { db in try Int.fetchOne(db, sql: "SELECT 1") }) == 1
    }

    // MARK: The journal

    public func journaled(_ kind: OrderKind, _ mrn: String) async throws -> Journaled {
        try await pool.read { db in try Self.journaled(db, kind, mrn) }
    }

    static func journaled(_ db: Database, _ kind: OrderKind, _ mrn: String) throws -> Journaled {
        if let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM orders WHERE kind = ? AND mrn = ?"), arguments: [kind.rawValue, mrn]) {
            return .order(try OrderRow.decode(row))
        }
        if let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM tombstones WHERE kind = ? AND mrn = ?"), arguments: [kind.rawValue, mrn]) {
            return .tombstone(try TombstoneRow.decode(row))
        }
        return .nothing
    }

    public func commit(_ write: JournalWrite) async throws -> CommitResult {
        try await writes.write(durable: write.durable && durableCommits) { db in
            switch write.order {
            case .insert(let order)?:
                // A pruned order's tombstone keeps its mrn taken, as the order itself did.
                let tombstoned = try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM tombstones WHERE kind = ? AND mrn = ?"),
                                                   arguments: [order.kind.rawValue, order.mrn]) ?? false
                if !tombstoned { try db.cachedStatement(sql: OrderRow.insertSQL).execute(arguments: OrderRow.insertArguments(order)) }
                if tombstoned || db.changesCount == 0 { return .conflict(try Self.journaled(db, order.kind, order.mrn)) }
            case .update(let order, let expected)?:
                try db.cachedStatement(sql: OrderRow.updateSQL).execute(arguments: OrderRow.updateArguments(order, expectedVersion: expected))
                if db.changesCount == 0 { return .conflict(try Self.journaled(db, order.kind, order.mrn)) }
            case .delete(let kind, let mrn, let expected)?:
                try db.cachedStatement(sql: "DELETE FROM orders WHERE kind = ? AND mrn = ? AND version = ?").execute(arguments: [kind.rawValue, mrn, expected])
                if db.changesCount == 0 { return .conflict(try Self.journaled(db, kind, mrn)) }
                try db.cachedStatement(sql: "DELETE FROM callback_receipts WHERE kind = ? AND mrn = ?").execute(arguments: [kind.rawValue, mrn])
            case nil:
                break
            }
            if let t = write.tombstone {
                try db.cachedStatement(sql: """
                    INSERT OR REPLACE INTO tombstones (kind, mrn, outcome, settlement_event_id, fingerprint, flag, pruned_at) VALUES (?, ?, ?, ?, ?, ?, ?)
                    """).execute(arguments: [t.kind.rawValue, t.mrn, t.outcome.rawValue, t.settlementEventID, t.fingerprint, t.flag?.rawValue, t.prunedAt])
            }
            for event in write.events {
                // An id already in the outbox is the same fact emitted again: kept once.
                try db.cachedStatement(sql: """
                    INSERT INTO outbox_events (id, type, kind, mrn, body, notify_url, status, next_attempt_at, created_at, trace_parent)
                    VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?) ON CONFLICT (id) DO NOTHING
                    """).execute(arguments: [event.id, event.type.rawValue, event.kind.rawValue, event.mrn, event.body, event.notifyUrl, event.createdAt, event.createdAt,
                                             event.traceParent])
            }
            if let r = write.receipt {
                try db.cachedStatement(sql: """
                    INSERT INTO callback_receipts (kind, mrn, outcome, source, duplicate, body, source_address, received_at) VALUES (?, ?, ?, 'callback', ?, ?, ?, ?)
                    """).execute(arguments: [r.kind.rawValue, r.mrn, r.outcome.rawValue, r.duplicate, r.body, r.sourceAddress, r.at])
            }
            return .committed
        }
    }

    public func claimDueOrders(now: Millis, lease: Millis, limit: Int) async throws -> [Order] {
        try await writes.write(durable: false) { db in
            let due = try Row.fetchAll(db.cachedStatement(sql: """
                SELECT * FROM orders WHERE next_query_at IS NOT NULL AND next_query_at <= ? ORDER BY next_query_at LIMIT ?
                """), arguments: [now, limit]).map(OrderRow.decode)
            return try due.map { order in
                var claimed = order
                claimed.nextQueryAt = now + lease
                claimed.version += 1
                try db.cachedStatement(sql: "UPDATE orders SET next_query_at = ?, version = ? WHERE kind = ? AND mrn = ?")
                    .execute(arguments: [claimed.nextQueryAt, claimed.version, order.kind.rawValue, order.mrn])
                return claimed
            }
        }
    }

    public func closedOrders(before: Millis, limit: Int) async throws -> [Order] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM orders WHERE closed_at IS NOT NULL AND closed_at < ? ORDER BY closed_at LIMIT ?",
                             arguments: [before, limit]).map(OrderRow.decode)
        }
    }

    public func pruneTombstones(before: Millis) async throws -> Int {
        try await writes.write(durable: false) { db in
            try db.execute(sql: "DELETE FROM tombstones WHERE pruned_at < ?", arguments: [before])
            return db.changesCount
        }
    }

    public func flaggedOrders(limit: Int) async throws -> [Order] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM orders WHERE flag IS NOT NULL ORDER BY updated_at DESC LIMIT ?", arguments: [limit]).map(OrderRow.decode)
        }
    }

    // MARK: Refused callbacks

    public func recordRejection(_ r: RejectedCallback) async throws {
        try await writes.write(durable: false) { db in
            try db.execute(sql: """
                INSERT INTO rejected_callbacks (kind, mrn, reason, detail, source_address, body, at) VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [r.kind.rawValue, r.mrn, r.reason, r.detail, r.sourceAddress, String(r.body.prefix(4096)), r.at])
            let id = db.lastInsertedRowID
            if id % 100 == 0 {
                try db.execute(sql: "DELETE FROM rejected_callbacks WHERE id <= ?", arguments: [id - Int64(Self.rejectionRetention)])
            }
        }
    }

    public func rejections(limit: Int) async throws -> [RejectedCallback] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM rejected_callbacks ORDER BY id DESC LIMIT ?", arguments: [limit]).map { row in
                RejectedCallback(kind: OrderKind(rawValue: row["kind"]) ?? .deposit, mrn: row["mrn"], reason: row["reason"], detail: row["detail"],
                                 sourceAddress: row["source_address"], body: row["body"], at: row["at"])
            }
        }
    }

    // MARK: Outbox

    static func event(_ row: Row) throws -> OutboxEvent {
        guard let type = EventType(rawValue: row["type"]), let kind = OrderKind(rawValue: row["kind"]), let status = EventStatus(rawValue: row["status"]) else {
            throw LedgerError("an outbox row holds an unknown type, kind or status")
        }
        return OutboxEvent(
            id: row["id"], type: type, kind: kind, mrn: row["mrn"], body: row["body"], notifyUrl: row["notify_url"],
            status: status, attempts: row["attempts"], scheduleBase: row["schedule_base"],
            nextAttemptAt: row["next_attempt_at"], lastError: row["last_error"], createdAt: row["created_at"], deliveredAt: row["delivered_at"],
            traceParent: row["trace_parent"]
        )
    }

    public func claimDueEvents(now: Millis, lease: Millis, limit: Int, excluding: Set<String>) async throws -> [OutboxEvent] {
        guard limit > 0 else { return [] }
        return try await writes.write(durable: false) { [claimOwner] db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT * FROM outbox_events
                WHERE status = 'pending' AND next_attempt_at <= ? AND (claimed_until IS NULL OR claimed_until <= ?)
                ORDER BY next_attempt_at, seq LIMIT ?
                """, arguments: [now, now, limit + excluding.count])
            let events = try rows.map(Self.event).filter { !excluding.contains($0.id) }.prefix(limit)
            for event in events {
                try db.execute(sql: "UPDATE outbox_events SET claimed_until = ?, claimed_by = ? WHERE id = ?", arguments: [now + lease, claimOwner, event.id])
            }
            return Array(events)
        }
    }

    public func renewEventClaims(ids: Set<String>, until: Millis) async throws -> Set<String> {
        guard !ids.isEmpty else { return [] }
        return try await writes.write(durable: false) { [claimOwner] db in
            var renewed = Set<String>()
            for id in ids {
                try db.cachedStatement(sql: "UPDATE outbox_events SET claimed_until = ? WHERE id = ? AND claimed_by = ? AND status = 'pending'")
                    .execute(arguments: [until, id, claimOwner])
                if db.changesCount == 1 { renewed.insert(id) }
            }
            return renewed
        }
    }

    @discardableResult
    public func finishAttempt(_ attempt: DeliveryAttempt, next: NextStep) async throws -> AttemptRecorded {
        try await writes.write(durable: false) { [claimOwner] db in
            try db.cachedStatement(sql: """
                INSERT INTO delivery_attempts (event_id, attempt, url, status_code, error, duration_ms, at) VALUES (?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [attempt.eventID, attempt.attempt, attempt.url, attempt.statusCode, attempt.error, attempt.durationMillis, attempt.at])
            guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT status, attempts, claimed_by FROM outbox_events WHERE id = ?"),
                                             arguments: [attempt.eventID]) else {
                throw LedgerError("no outbox event \(attempt.eventID)")
            }
            let settlement = AttemptSettlement(
                row: AttemptSettlement.Row(status: EventStatus(rawValue: row["status"]) ?? .pending, attempts: row["attempts"], claimedBy: row["claimed_by"]),
                attempt: attempt, next: next, owner: claimOwner)
            switch settlement.change {
            case .apply(.delivered):
                try db.cachedStatement(sql: """
                    UPDATE outbox_events SET status = 'delivered', attempts = ?, claimed_until = NULL, claimed_by = NULL, next_attempt_at = NULL,
                    last_error = NULL, delivered_at = ? WHERE id = ?
                    """).execute(arguments: [attempt.attempt, attempt.at, attempt.eventID])
            case .apply(.retry(let at)):
                try db.cachedStatement(sql: """
                    UPDATE outbox_events SET attempts = ?, claimed_until = NULL, claimed_by = NULL, next_attempt_at = ?, last_error = ? WHERE id = ?
                    """).execute(arguments: [attempt.attempt, at, attempt.error ?? attempt.statusCode.map { "HTTP \($0)" }, attempt.eventID])
            case .apply(.fail(let reason)):
                try db.cachedStatement(sql: """
                    UPDATE outbox_events SET status = 'failed', attempts = ?, claimed_until = NULL, claimed_by = NULL, next_attempt_at = NULL,
                    last_error = ? WHERE id = ?
                    """).execute(arguments: [attempt.attempt, reason, attempt.eventID])
            case .markDelivered:
                try db.cachedStatement(sql: """
                    UPDATE outbox_events SET status = 'delivered', attempts = MAX(attempts, ?), claimed_until = NULL, claimed_by = NULL,
                    next_attempt_at = NULL, last_error = NULL, delivered_at = ? WHERE id = ?
                    """).execute(arguments: [attempt.attempt, attempt.at, attempt.eventID])
            case .none:
                break
            }
            return settlement.recorded
        }
    }

    public func failEvent(id: String, reason: String, at: Millis) async throws {
        try await writes.write(durable: false) { db in
            try db.execute(sql: """
                UPDATE outbox_events SET status = 'failed', claimed_until = NULL, claimed_by = NULL, next_attempt_at = NULL, last_error = ? WHERE id = ?
                """, arguments: [reason, id])
        }
    }

    public func nextDueTime() async throws -> Millis? {
        try await pool.read { db in
            try Millis.fetchOne(db, sql: "SELECT MIN(next_attempt_at) FROM outbox_events WHERE status = 'pending'")
        }
    }

    public func events(_ query: EventQuery) async throws -> [OutboxEvent] {
        try await pool.read { db in
            var clauses: [String] = []
            var arguments: StatementArguments = []
            if let status = query.status { clauses.append("status = ?"); arguments += [status.rawValue] }
            if let type = query.type { clauses.append("type = ?"); arguments += [type.rawValue] }
            if let mrn = query.mrn { clauses.append("mrn = ?"); arguments += [mrn] }
            if let after = query.after {
                clauses.append("seq > COALESCE((SELECT seq FROM outbox_events WHERE id = ?), 0)")
                arguments += [after]
            }
            let whereClause = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
            arguments += [query.limit]
            return try Row.fetchAll(db, sql: "SELECT * FROM outbox_events \(whereClause) ORDER BY seq LIMIT ?", arguments: arguments).map(Self.event)
        }
    }

    public func event(id: String) async throws -> (OutboxEvent, [DeliveryAttempt])? {
        try await pool.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM outbox_events WHERE id = ?", arguments: [id]) else { return nil }
            let attempts = try Row.fetchAll(db, sql: "SELECT * FROM delivery_attempts WHERE event_id = ? ORDER BY id", arguments: [id]).map { r in
                DeliveryAttempt(eventID: r["event_id"], attempt: r["attempt"], url: r["url"], statusCode: r["status_code"], error: r["error"],
                                durationMillis: r["duration_ms"], at: r["at"])
            }
            return (try Self.event(row), attempts)
        }
    }

    public func redeliver(id: String, at: Millis) async throws -> OutboxEvent? {
        try await writes.write(durable: false) { db in
            try db.execute(sql: """
                UPDATE outbox_events SET status = 'pending', schedule_base = attempts, next_attempt_at = ?, claimed_until = NULL, claimed_by = NULL,
                last_error = NULL
                WHERE id = ?
                """, arguments: [at, id])
            guard db.changesCount == 1, let row = try Row.fetchOne(db, sql: "SELECT * FROM outbox_events WHERE id = ?", arguments: [id]) else { return nil }
            return try Self.event(row)
        }
    }

    public func pruneDeliveredEvents(before: Millis) async throws -> Int {
        try await writes.write(durable: false) { db in
            let old = "SELECT id FROM outbox_events WHERE delivered_at IS NOT NULL AND delivered_at < ? AND status = 'delivered'"
            try db.execute(sql: "DELETE FROM delivery_attempts WHERE event_id IN (\(old))", arguments: [before])
            try db.execute(sql: "DELETE FROM outbox_events WHERE id IN (\(old))", arguments: [before])
            return db.changesCount
        }
    }

    // MARK: Statistics

    public func statistics(now: Millis) async throws -> LedgerStatistics {
        try await pool.read { db in
            let outbox = try Row.fetchOne(db, sql: """
                SELECT COUNT(*) FILTER (WHERE status = 'pending') AS pending,
                       MIN(created_at) FILTER (WHERE status = 'pending') AS oldest,
                       COUNT(*) FILTER (WHERE status = 'failed') AS failed
                FROM outbox_events WHERE status IN ('pending', 'failed')
                """)!
            let orders = try Row.fetchOne(db, sql: """
                SELECT COUNT(*) FILTER (WHERE next_query_at <= ?) AS due, COUNT(*) AS open FROM orders WHERE next_query_at IS NOT NULL
                """, arguments: [now])!
            let flagged = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM orders WHERE flag IS NOT NULL") ?? 0
            return LedgerStatistics(
                pendingEvents: outbox["pending"], oldestPendingEventAt: outbox["oldest"], failedEvents: outbox["failed"],
                reconcileDue: orders["due"], reconcileOpen: orders["open"], flaggedOrders: flagged
            )
        }
    }
}
