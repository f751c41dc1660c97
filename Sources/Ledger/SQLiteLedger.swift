import Foundation
import GRDB

#if canImport(Glibc)
import Glibc
#endif

/// The embedded ledger: one SQLite file in WAL mode.
///
/// Every commit is safe against a crash of the process (WAL). Commits that acknowledge something to the
/// gateway, callback settlements (`apply`), are also durable against power loss by default
/// (`synchronous = FULL`: they wait for the WAL to reach the disk, and so make every earlier commit durable
/// too); they are grouped under load (`GroupCommit`). Journal writes of creates and delivery bookkeeping use
/// `synchronous = NORMAL`: a power loss may drop the last of them, which the gateway's own mrn uniqueness and
/// at-least-once delivery absorb. `durableCommits: false` makes settlements `NORMAL` too: a callback
/// acknowledged with `success` could then be forgotten on a power loss. A SQLite database belongs to one sidecar process at a time: a lock file next to it
/// refuses a second one, which also lets a new process release the claims a crashed one left behind.
public final class SQLiteLedger: Ledger {
    let pool: DatabasePool
    /// The hot write paths (creates, callbacks, webhook attempts) commit through here, in groups under load.
    let writes: GroupCommit
    public let path: String
    /// Whether commits that acknowledge something to the gateway (callback settlements) wait for the disk.
    let durableCommits: Bool
    private let lockDescriptor: Int32
    /// A connection of its own for `checkpoint()`, so copying the log into the database never holds the writer.
    private let checkpointer: DatabaseQueue

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
            // This process holds the lock: claims in the file belong to a process that is gone, and so do creates
            // it left `sending`. Those may or may not have reached the gateway: `unknown`, for the reconciler.
            let now = Int64((Date().timeIntervalSince1970 * 1000).rounded())
            try pool.write { db in
                try db.execute(sql: "UPDATE outbox_events SET claimed_until = NULL WHERE claimed_until IS NOT NULL")
                try db.execute(sql: """
                    UPDATE orders SET state = 'unknown', gateway_code = 'interrupted', next_query_at = ?, updated_at = ? WHERE state = 'sending'
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

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: journal, receipts, outbox, attempts, rejections") { db in
            try db.execute(sql: """
                CREATE TABLE orders (
                    kind TEXT NOT NULL,
                    mrn TEXT NOT NULL,
                    amount TEXT NOT NULL,
                    channel_id INTEGER,
                    notify_url TEXT,
                    state TEXT NOT NULL,
                    gateway_code TEXT,
                    settled_source TEXT,
                    paid_amount TEXT,
                    flag TEXT,
                    known INTEGER NOT NULL DEFAULT 1,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL,
                    settled_at INTEGER,
                    PRIMARY KEY (kind, mrn)
                );
                CREATE INDEX orders_by_state ON orders(state, updated_at);
                CREATE TABLE callback_receipts (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    kind TEXT NOT NULL,
                    mrn TEXT NOT NULL,
                    outcome TEXT NOT NULL,
                    source TEXT NOT NULL,
                    duplicate INTEGER NOT NULL,
                    body TEXT,
                    source_address TEXT,
                    received_at INTEGER NOT NULL
                );
                CREATE INDEX receipts_by_order ON callback_receipts(kind, mrn);
                CREATE TABLE outbox_events (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    id TEXT NOT NULL UNIQUE,
                    type TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    mrn TEXT NOT NULL,
                    body TEXT NOT NULL,
                    notify_url TEXT,
                    status TEXT NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    schedule_base INTEGER NOT NULL DEFAULT 0,
                    next_attempt_at INTEGER,
                    claimed_until INTEGER,
                    last_error TEXT,
                    created_at INTEGER NOT NULL,
                    delivered_at INTEGER
                );
                CREATE INDEX outbox_due ON outbox_events(status, next_attempt_at);
                CREATE INDEX outbox_by_mrn ON outbox_events(mrn);
                CREATE TABLE delivery_attempts (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    event_id TEXT NOT NULL REFERENCES outbox_events(id),
                    attempt INTEGER NOT NULL,
                    url TEXT NOT NULL,
                    status_code INTEGER,
                    error TEXT,
                    duration_ms INTEGER NOT NULL,
                    at INTEGER NOT NULL
                );
                CREATE INDEX attempts_by_event ON delivery_attempts(event_id);
                CREATE TABLE rejected_callbacks (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    kind TEXT NOT NULL,
                    mrn TEXT,
                    reason TEXT NOT NULL,
                    detail TEXT NOT NULL,
                    source_address TEXT NOT NULL,
                    body TEXT NOT NULL,
                    at INTEGER NOT NULL
                );
                """)
        }
        migrator.registerMigration("v2: idempotent creates and reconciliation") { db in
            try db.execute(sql: """
                ALTER TABLE orders ADD COLUMN request TEXT;
                ALTER TABLE orders ADD COLUMN fingerprint TEXT;
                ALTER TABLE orders ADD COLUMN response_status INTEGER;
                ALTER TABLE orders ADD COLUMN response_body TEXT;
                ALTER TABLE orders ADD COLUMN last_gateway_status INTEGER;
                ALTER TABLE orders ADD COLUMN next_query_at INTEGER;
                ALTER TABLE orders ADD COLUMN query_count INTEGER NOT NULL DEFAULT 0;
                CREATE INDEX orders_to_reconcile ON orders(state, next_query_at);
                """)
        }
        migrator.registerMigration("v3: flagged orders, counted by the metrics endpoint") { db in
            try db.execute(sql: "CREATE INDEX orders_flagged ON orders(flag) WHERE flag IS NOT NULL")
        }
        return migrator
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

    // MARK: Orders

    public func beginOrder(_ order: OrderRecord) async throws -> OrderBegin {
        try await writes.write(durable: false) { db in
            if let existing = try Self.fetchOrder(db, kind: order.kind, mrn: order.mrn) { return .existing(existing) }
            try db.cachedStatement(sql: """
                INSERT INTO orders (kind, mrn, amount, channel_id, notify_url, state, gateway_code, created_at, updated_at, request, fingerprint, next_query_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [order.kind, order.mrn, order.amount, order.channelId, order.notifyUrl, order.state.rawValue, order.gatewayCode,
                                 order.createdAt, order.updatedAt, order.request, order.fingerprint, order.nextQueryAt])
            return .inserted
        }
    }

    public func restartOrder(kind: String, mrn: String, at: Millis) async throws -> Bool {
        try await writes.write(durable: false) { db in
            try db.execute(sql: """
                UPDATE orders SET state = 'sending', gateway_code = NULL, response_status = NULL, response_body = NULL, updated_at = ?
                WHERE kind = ? AND mrn = ? AND state = 'rejected' AND gateway_code IN ('not_sent', 'not_created')
                """, arguments: [at, kind, mrn])
            return db.changesCount == 1
        }
    }

    public func finishCreate(kind: String, mrn: String, state: OrderState, gatewayCode: String?, responseStatus: Int, responseBody: String,
                             nextQueryAt: Millis?, at: Millis) async throws {
        try await writes.write(durable: false) { db in
            try db.cachedStatement(sql: """
                UPDATE orders SET state = CASE WHEN state IN ('succeeded', 'failed') THEN state ELSE ? END,
                    gateway_code = ?, response_status = ?, response_body = ?, updated_at = ?,
                    next_query_at = CASE WHEN state IN ('succeeded', 'failed') THEN NULL ELSE ? END
                WHERE kind = ? AND mrn = ?
                """).execute(arguments: [state.rawValue, gatewayCode, responseStatus, responseBody, at, nextQueryAt, kind, mrn])
        }
    }

    public func order(kind: String, mrn: String) async throws -> OrderRecord? {
        try await pool.read { db in try Self.fetchOrder(db, kind: kind, mrn: mrn) }
    }

    static func fetchOrder(_ db: Database, kind: String, mrn: String) throws -> OrderRecord? {
        guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM orders WHERE kind = ? AND mrn = ?"), arguments: [kind, mrn]) else { return nil }
        return order(row)
    }

    static func order(_ row: Row) -> OrderRecord {
        var order = OrderRecord(
            kind: row["kind"], mrn: row["mrn"], amount: row["amount"], channelId: row["channel_id"], notifyUrl: row["notify_url"],
            state: OrderState(rawValue: row["state"]) ?? .unknown, gatewayCode: row["gateway_code"], settledSource: row["settled_source"],
            paidAmount: row["paid_amount"], flag: row["flag"], createdAt: row["created_at"], updatedAt: row["updated_at"],
            request: row["request"], fingerprint: row["fingerprint"], nextQueryAt: row["next_query_at"]
        )
        order.responseStatus = row["response_status"]
        order.responseBody = row["response_body"]
        order.lastGatewayStatus = row["last_gateway_status"]
        order.settledAt = row["settled_at"]
        order.queryCount = row["query_count"]
        order.known = row["known"]
        return order
    }

    public func ordersToReconcile(now: Millis, limit: Int) async throws -> [OrderRecord] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM orders WHERE state IN ('pending', 'unknown') AND next_query_at IS NOT NULL AND next_query_at <= ?
                ORDER BY next_query_at LIMIT ?
                """, arguments: [now, limit]).map(Self.order)
        }
    }

    public func recordQuery(kind: String, mrn: String, gatewayStatus: Int?, state: OrderState?, gatewayCode: String?, nextQueryAt: Millis?, flag: String?, at: Millis) async throws {
        try await writes.write(durable: false) { db in
            try db.execute(sql: """
                UPDATE orders SET
                    last_gateway_status = COALESCE(?, last_gateway_status),
                    state = CASE WHEN ? IS NOT NULL AND state IN ('pending', 'unknown', 'sending') THEN ? ELSE state END,
                    gateway_code = COALESCE(?, gateway_code),
                    next_query_at = ?, query_count = query_count + 1, flag = COALESCE(?, flag), updated_at = ?
                WHERE kind = ? AND mrn = ?
                """, arguments: [gatewayStatus, state?.rawValue, state?.rawValue, gatewayCode, nextQueryAt, flag, at, kind, mrn])
        }
    }

    public func prune(before: Millis) async throws -> Int {
        try await pool.write { db in
            try db.execute(sql: """
                DELETE FROM callback_receipts WHERE (kind, mrn) IN
                    (SELECT kind, mrn FROM orders WHERE state IN ('succeeded', 'failed', 'rejected') AND updated_at < ?)
                """, arguments: [before])
            try db.execute(sql: "DELETE FROM orders WHERE state IN ('succeeded', 'failed', 'rejected') AND updated_at < ?", arguments: [before])
            return db.changesCount
        }
    }

    // MARK: Settlements

    public func apply(_ settlement: Settlement, eventID: String) async throws -> SettlementOutcome {
        try await writes.write(durable: durableCommits) { db in
            let existing = try Self.fetchOrder(db, kind: settlement.kind, mrn: settlement.mrn)
            if let refusal = settlement.check(existing) { return .refused(reason: refusal.reason, detail: refusal.detail) }
            let outcome: OrderState = settlement.succeeded ? .succeeded : .failed
            func receipt(duplicate: Bool) throws {
                try db.cachedStatement(sql: """
                    INSERT INTO callback_receipts (kind, mrn, outcome, source, duplicate, body, source_address, received_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """).execute(arguments: [settlement.kind, settlement.mrn, outcome.rawValue, settlement.source, duplicate, settlement.rawBody, settlement.sourceAddress, settlement.at])
            }
            if let existing, existing.state.isSettled {
                try receipt(duplicate: true)
                if existing.state == outcome { return .duplicate }
                let flag = "\(settlement.source) reported \(outcome.rawValue) after the order \(existing.state.rawValue)"
                try db.execute(sql: "UPDATE orders SET flag = ?, updated_at = ? WHERE kind = ? AND mrn = ?",
                               arguments: [flag, settlement.at, settlement.kind, settlement.mrn])
                return .contradiction(existing: existing.state)
            }
            if existing != nil {
                try db.cachedStatement(sql: """
                    UPDATE orders SET state = ?, settled_source = ?, paid_amount = ?, settled_at = ?, updated_at = ?, next_query_at = NULL
                    WHERE kind = ? AND mrn = ?
                    """).execute(arguments: [outcome.rawValue, settlement.source, settlement.paidAmount, settlement.at, settlement.at, settlement.kind, settlement.mrn])
            } else {
                try db.cachedStatement(sql: """
                    INSERT INTO orders (kind, mrn, amount, state, settled_source, paid_amount, known, created_at, updated_at, settled_at)
                    VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?)
                    """).execute(arguments: [settlement.kind, settlement.mrn, settlement.orderAmount, outcome.rawValue, settlement.source, settlement.paidAmount,
                                     settlement.at, settlement.at, settlement.at])
            }
            try receipt(duplicate: false)
            try db.cachedStatement(sql: """
                INSERT INTO outbox_events (id, type, kind, mrn, body, notify_url, status, next_attempt_at, created_at)
                VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?)
                """).execute(arguments: [eventID, settlement.eventType, settlement.kind, settlement.mrn, settlement.payload(existing), existing?.notifyUrl,
                                 settlement.at, settlement.at])
            return .emitted(eventID: eventID)
        }
    }

    public func recordRejection(_ r: RejectedCallback) async throws {
        try await writes.write(durable: false) { db in
            try db.execute(sql: """
                INSERT INTO rejected_callbacks (kind, mrn, reason, detail, source_address, body, at) VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [r.kind, r.mrn, r.reason, r.detail, r.sourceAddress, String(r.body.prefix(4096)), r.at])
            let id = db.lastInsertedRowID
            if id % 100 == 0 {
                try db.execute(sql: "DELETE FROM rejected_callbacks WHERE id <= ?", arguments: [id - Int64(Self.rejectionRetention)])
            }
        }
    }

    public func rejections(limit: Int) async throws -> [RejectedCallback] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM rejected_callbacks ORDER BY id DESC LIMIT ?", arguments: [limit]).map { row in
                RejectedCallback(kind: row["kind"], mrn: row["mrn"], reason: row["reason"], detail: row["detail"],
                                 sourceAddress: row["source_address"], body: row["body"], at: row["at"])
            }
        }
    }

    // MARK: Outbox

    static func event(_ row: Row) -> OutboxEvent {
        OutboxEvent(
            id: row["id"], type: row["type"], kind: row["kind"], mrn: row["mrn"], body: row["body"], notifyUrl: row["notify_url"],
            status: EventStatus(rawValue: row["status"]) ?? .pending, attempts: row["attempts"], scheduleBase: row["schedule_base"],
            nextAttemptAt: row["next_attempt_at"], lastError: row["last_error"], createdAt: row["created_at"], deliveredAt: row["delivered_at"]
        )
    }

    public func claimDueEvents(now: Millis, lease: Millis, limit: Int, excluding: Set<String>) async throws -> [OutboxEvent] {
        guard limit > 0 else { return [] }
        return try await writes.write(durable: false) { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT * FROM outbox_events
                WHERE status = 'pending' AND next_attempt_at <= ? AND (claimed_until IS NULL OR claimed_until <= ?)
                ORDER BY next_attempt_at, seq LIMIT ?
                """, arguments: [now, now, limit + excluding.count])
            let events = rows.map(Self.event).filter { !excluding.contains($0.id) }.prefix(limit)
            for event in events {
                try db.execute(sql: "UPDATE outbox_events SET claimed_until = ? WHERE id = ?", arguments: [now + lease, event.id])
            }
            return Array(events)
        }
    }

    public func finishAttempt(_ attempt: DeliveryAttempt, next: NextStep) async throws {
        try await writes.write(durable: false) { db in
            try db.cachedStatement(sql: """
                INSERT INTO delivery_attempts (event_id, attempt, url, status_code, error, duration_ms, at) VALUES (?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [attempt.eventID, attempt.attempt, attempt.url, attempt.statusCode, attempt.error, attempt.durationMillis, attempt.at])
            switch next {
            case .delivered:
                try db.cachedStatement(sql: """
                    UPDATE outbox_events SET status = 'delivered', attempts = attempts + 1, claimed_until = NULL, next_attempt_at = NULL,
                    last_error = NULL, delivered_at = ? WHERE id = ?
                    """).execute(arguments: [attempt.at, attempt.eventID])
            case .retry(let at):
                try db.cachedStatement(sql: """
                    UPDATE outbox_events SET attempts = attempts + 1, claimed_until = NULL, next_attempt_at = ?, last_error = ? WHERE id = ?
                    """).execute(arguments: [at, attempt.error ?? attempt.statusCode.map { "HTTP \($0)" }, attempt.eventID])
            case .fail(let reason):
                try db.cachedStatement(sql: """
                    UPDATE outbox_events SET status = 'failed', attempts = attempts + 1, claimed_until = NULL, next_attempt_at = NULL,
                    last_error = ? WHERE id = ?
                    """).execute(arguments: [reason, attempt.eventID])
            }
        }
    }

    public func failEvent(id: String, reason: String, at: Millis) async throws {
        try await writes.write(durable: false) { db in
            try db.execute(sql: """
                UPDATE outbox_events SET status = 'failed', claimed_until = NULL, next_attempt_at = NULL, last_error = ? WHERE id = ?
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
            if let type = query.type { clauses.append("type = ?"); arguments += [type] }
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
            return (Self.event(row), attempts)
        }
    }

    public func redeliver(id: String, at: Millis) async throws -> OutboxEvent? {
        try await writes.write(durable: false) { db in
            try db.execute(sql: """
                UPDATE outbox_events SET status = 'pending', schedule_base = attempts, next_attempt_at = ?, claimed_until = NULL, last_error = NULL
                WHERE id = ?
                """, arguments: [at, id])
            guard db.changesCount == 1, let row = try Row.fetchOne(db, sql: "SELECT * FROM outbox_events WHERE id = ?", arguments: [id]) else { return nil }
            return Self.event(row)
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
                SELECT COUNT(*) FILTER (WHERE state IN ('pending', 'unknown') AND next_query_at IS NOT NULL AND next_query_at <= ?) AS due,
                       COUNT(*) FILTER (WHERE state IN ('pending', 'unknown') AND next_query_at IS NOT NULL) AS open
                FROM orders WHERE state IN ('pending', 'unknown')
                """, arguments: [now])!
            let flagged = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM orders WHERE flag IS NOT NULL") ?? 0
            return LedgerStatistics(
                pendingEvents: outbox["pending"], oldestPendingEventAt: outbox["oldest"], failedEvents: outbox["failed"],
                reconcileDue: orders["due"], reconcileOpen: orders["open"], flaggedOrders: flagged
            )
        }
    }
}
