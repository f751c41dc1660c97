import GatewayProtocol
import Ledger
import Orders
import PostgresNIO

extension PostgresLedger {
    // MARK: Refused callbacks

    public func recordRejection(_ r: RejectedCallback) async throws {
        let rows = try await rows("recording a refused callback", """
            INSERT INTO rejected_callbacks (kind, mrn, reason, detail, source_address, body, at)
            VALUES (\(r.kind.rawValue), \(r.mrn), \(r.reason), \(r.detail), \(r.sourceAddress), \(String(r.body.prefix(4096))), \(r.at))
            RETURNING id
            """)
        // Every hundredth record trims the table to the newest `rejectionRetention` (ids have gaps: about that many).
        if let id = try rows.first?.decode(Int64.self), id % 100 == 0 {
            _ = try await self.rows("trimming refused callbacks", "DELETE FROM rejected_callbacks WHERE id <= \(id - Int64(Self.rejectionRetention))")
        }
    }

    public func rejections(limit: Int) async throws -> [RejectedCallback] {
        try await rows("reading refused callbacks", "SELECT * FROM rejected_callbacks ORDER BY id DESC LIMIT \(limit)").map { row in
            let c = Columns(row)
            return RejectedCallback(kind: OrderKind(rawValue: try c("kind")) ?? .deposit, mrn: try c("mrn"), reason: try c("reason"), detail: try c("detail"),
                                    sourceAddress: try c("source_address"), body: try c("body"), at: try c("at"))
        }
    }

    // MARK: The outbox

    static func event(_ row: PostgresRow) throws -> OutboxEvent {
        let c = Columns(row)
        guard let type = EventType(rawValue: try c("type")), let kind = OrderKind(rawValue: try c("kind")), let status = EventStatus(rawValue: try c("status")) else {
            throw LedgerError("an outbox row holds an unknown type, kind or status")
        }
        return OutboxEvent(
            id: try c("id"), type: type, kind: kind, mrn: try c("mrn"), body: try c("body"), notifyUrl: try c("notify_url"),
            status: status, attempts: try c("attempts"), scheduleBase: try c("schedule_base"),
            nextAttemptAt: try c("next_attempt_at"), lastError: try c("last_error"), createdAt: try c("created_at"), deliveredAt: try c("delivered_at"),
            traceParent: try c("trace_parent")
        )
    }

    public func claimDueEvents(now: Millis, lease: Millis, limit: Int, excluding: Set<String>) async throws -> [OutboxEvent] {
        guard limit > 0 else { return [] }
        // As `claimDueOrders`: one statement, rows locked as picked, those another replica holds skipped.
        let rows = try await rows("claiming due events", """
            WITH due AS (
                SELECT seq FROM outbox_events
                WHERE status = 'pending' AND next_attempt_at <= \(now) AND (claimed_until IS NULL OR claimed_until <= \(now))
                    AND NOT (id = ANY(\(Array(excluding))))
                ORDER BY next_attempt_at, seq LIMIT \(limit)
                FOR UPDATE SKIP LOCKED
            )
            UPDATE outbox_events e SET claimed_until = \(now + lease), claimed_by = \(claimOwner) FROM due WHERE e.seq = due.seq
            RETURNING e.*
            """)
        return try rows.map { (try Columns($0)("seq", as: Int64.self), try Self.event($0)) }
            .sorted { ($0.1.nextAttemptAt ?? 0, $0.0) < ($1.1.nextAttemptAt ?? 0, $1.0) }
            .map(\.1)
    }

    public func renewEventClaims(ids: Set<String>, until: Millis) async throws -> Set<String> {
        guard !ids.isEmpty else { return [] }
        // A replica claiming the same row meanwhile holds its lock: this waits for it, then re-reads the row and finds
        // the other owner's name (READ COMMITTED re-checks an updated row against the WHERE clause).
        let rows = try await rows("renewing event claims", """
            UPDATE outbox_events SET claimed_until = \(until)
            WHERE id = ANY(\(Array(ids))) AND claimed_by = \(claimOwner) AND status = 'pending'
            RETURNING id
            """)
        return Set(try rows.map { try $0.decode(String.self) })
    }

    @discardableResult
    public func finishAttempt(_ attempt: DeliveryAttempt, next: NextStep) async throws -> AttemptRecorded {
        try await transaction("recording a delivery attempt") { [queryLogger, claimOwner] connection in
            // The row lock orders two replicas finishing the same attempt: the second sees what the first wrote.
            let found = try await connection.query("""
                SELECT status, attempts, claimed_by FROM outbox_events WHERE id = \(attempt.eventID) FOR UPDATE
                """, logger: queryLogger).collect()
            guard let row = found.first else { throw LedgerError("no outbox event \(attempt.eventID)") }
            let c = Columns(row)
            let settlement = AttemptSettlement(
                row: AttemptSettlement.Row(status: EventStatus(rawValue: try c("status")) ?? .pending, attempts: try c("attempts"),
                                           claimedBy: try c("claimed_by")),
                attempt: attempt, next: next, owner: claimOwner)
            _ = try await connection.query("""
                INSERT INTO delivery_attempts (event_id, attempt, url, status_code, error, duration_ms, at)
                VALUES (\(attempt.eventID), \(attempt.attempt), \(attempt.url), \(attempt.statusCode), \(attempt.error), \(attempt.durationMillis), \(attempt.at))
                """, logger: queryLogger).collect()
            let update: PostgresQuery?
            switch settlement.change {
            case .apply(.delivered):
                update = """
                    UPDATE outbox_events SET status = 'delivered', attempts = \(attempt.attempt), claimed_until = NULL, claimed_by = NULL,
                    next_attempt_at = NULL, last_error = NULL, delivered_at = \(attempt.at) WHERE id = \(attempt.eventID)
                    """
            case .apply(.retry(let at)):
                update = """
                    UPDATE outbox_events SET attempts = \(attempt.attempt), claimed_until = NULL, claimed_by = NULL, next_attempt_at = \(at),
                    last_error = \(attempt.error ?? attempt.statusCode.map { "HTTP \($0)" }) WHERE id = \(attempt.eventID)
                    """
            case .apply(.fail(let reason)):
                update = """
                    UPDATE outbox_events SET status = 'failed', attempts = \(attempt.attempt), claimed_until = NULL, claimed_by = NULL,
                    next_attempt_at = NULL, last_error = \(reason) WHERE id = \(attempt.eventID)
                    """
            case .markDelivered:
                update = """
                    UPDATE outbox_events SET status = 'delivered', attempts = GREATEST(attempts, \(attempt.attempt)), claimed_until = NULL,
                    claimed_by = NULL, next_attempt_at = NULL, last_error = NULL, delivered_at = \(attempt.at) WHERE id = \(attempt.eventID)
                    """
            case .none:
                update = nil
            }
            if let update { _ = try await connection.query(update, logger: queryLogger).collect() }
            return settlement.recorded
        }
    }

    public func failEvent(id: String, reason: String, at: Millis) async throws {
        _ = try await rows("failing an event", """
            UPDATE outbox_events SET status = 'failed', claimed_until = NULL, claimed_by = NULL, next_attempt_at = NULL, last_error = \(reason)
            WHERE id = \(id)
            """)
    }

    /// When the next pending event may be claimed: its due time, or the end of its claim if another process (or
    /// this one) holds it. (Counting claimed events as due now, as the single-process SQLite ledger may, would make
    /// a replica poll every few milliseconds while another delivers to a slow receiver.)
    public func nextDueTime() async throws -> Millis? {
        let rows = try await rows("reading the next due time", """
            SELECT MIN(GREATEST(next_attempt_at, COALESCE(claimed_until, next_attempt_at))) FROM outbox_events WHERE status = 'pending'
            """)
        return try rows.first?.decode(Int64?.self)
    }

    public func events(_ query: EventQuery) async throws -> [OutboxEvent] {
        var clauses: [String] = []
        var bindings = PostgresBindings()
        func bind(_ value: String) -> String {
            bindings.append(value)
            return "$\(bindings.count)"
        }
        if let status = query.status { clauses.append("status = \(bind(status.rawValue))") }
        if let type = query.type { clauses.append("type = \(bind(type.rawValue))") }
        if let mrn = query.mrn { clauses.append("mrn = \(bind(mrn))") }
        if let after = query.after { clauses.append("seq > COALESCE((SELECT seq FROM outbox_events WHERE id = \(bind(after))), 0)") }
        let whereClause = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        bindings.append(query.limit)
        let sql = "SELECT * FROM outbox_events \(whereClause) ORDER BY seq LIMIT $\(bindings.count)"
        return try await rows("listing events", PostgresQuery(unsafeSQL: sql, binds: bindings)).map(Self.event)
    }

    public func event(id: String) async throws -> (OutboxEvent, [DeliveryAttempt])? {
        let found = try await guardedOnConnection("reading an event") { connection, logger in
            guard let row = try await connection.query("SELECT * FROM outbox_events WHERE id = \(id)", logger: logger).collect().first else {
                return nil as (PostgresRow, [PostgresRow])?
            }
            let attempts = try await connection.query("SELECT * FROM delivery_attempts WHERE event_id = \(id) ORDER BY id", logger: logger).collect()
            return (row, attempts)
        }
        guard let found else { return nil }
        let (row, attemptRows) = found
        let attempts = try attemptRows.map { r in
            let c = Columns(r)
            return DeliveryAttempt(eventID: try c("event_id"), attempt: try c("attempt"), url: try c("url"), statusCode: try c("status_code"),
                                   error: try c("error"), durationMillis: try c("duration_ms"), at: try c("at"))
        }
        return (try Self.event(row), attempts)
    }

    public func redeliver(id: String, at: Millis) async throws -> OutboxEvent? {
        let rows = try await rows("queuing an event again", """
            UPDATE outbox_events SET status = 'pending', schedule_base = attempts, next_attempt_at = \(at), claimed_until = NULL, claimed_by = NULL,
                last_error = NULL
            WHERE id = \(id) RETURNING *
            """)
        return try rows.first.map(Self.event)
    }

    public func pruneDeliveredEvents(before: Millis) async throws -> Int {
        try await transaction("pruning delivered events") { [queryLogger] connection in
            let old = "SELECT id FROM outbox_events WHERE delivered_at IS NOT NULL AND delivered_at < $1 AND status = 'delivered'"
            var bindings = PostgresBindings()
            bindings.append(before)
            _ = try await connection.query(PostgresQuery(unsafeSQL: "DELETE FROM delivery_attempts WHERE event_id IN (\(old))", binds: bindings), logger: queryLogger).collect()
            let rows = try await connection.query(PostgresQuery(unsafeSQL: """
                WITH gone AS (DELETE FROM outbox_events WHERE id IN (\(old)) RETURNING 1) SELECT COUNT(*) FROM gone
                """, binds: bindings), logger: queryLogger).collect()
            return try rows.first?.decode(Int.self) ?? 0
        }
    }

    // MARK: Statistics

    public func statistics(now: Millis) async throws -> LedgerStatistics {
        let rows = try await rows("reading statistics", """
            SELECT
                (SELECT COUNT(*) FROM outbox_events WHERE status = 'pending') AS pending,
                (SELECT MIN(created_at) FROM outbox_events WHERE status = 'pending') AS oldest,
                (SELECT COUNT(*) FROM outbox_events WHERE status = 'failed') AS failed,
                (SELECT COUNT(*) FROM orders WHERE next_query_at IS NOT NULL AND next_query_at <= \(now)) AS due,
                (SELECT COUNT(*) FROM orders WHERE next_query_at IS NOT NULL) AS open,
                (SELECT COUNT(*) FROM orders WHERE flag IS NOT NULL) AS flagged
            """)
        guard let row = rows.first else { throw LedgerError("reading statistics returned no row") }
        let c = Columns(row)
        return LedgerStatistics(pendingEvents: try c("pending"), oldestPendingEventAt: try c("oldest"), failedEvents: try c("failed"),
                                reconcileDue: try c("due"), reconcileOpen: try c("open"), flaggedOrders: try c("flagged"))
    }

    // MARK: Notifications

    /// Listens on `outboxChannel` on a pooled connection of its own, calling `onQueued` for each notification and
    /// once each time listening (re)starts, for what was queued while nobody listened. Notifications sent while
    /// the connection is down are lost; the dispatcher's polling covers them. Returns when the task is cancelled.
    public func followOutbox(_ onQueued: @escaping @Sendable () -> Void) async {
        var failing = false
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: Self.outboxChannel) { notifications in
                        if failing { logger.info("listening for outbox notifications again", metadata: ["database": "\(settings)"]) }
                        failing = false
                        onQueued()
                        for try await _ in notifications { onQueued() }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                if !failing {
                    logger.warning("not listening for outbox notifications; polling meanwhile", metadata: [
                        "database": "\(settings)", "error": "\(Self.reason(error))",
                    ])
                }
                failing = true
            }
            // The sequence ended (connection closed) or failed: listen again shortly.
            try? await Task.sleep(for: .seconds(1))
        }
    }
}
