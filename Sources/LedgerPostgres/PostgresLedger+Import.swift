import GatewayProtocol
import Ledger
import Logging
import Orders
import PostgresNIO

extension PostgresLedger {
    /// The tables a ledger is made of: a copy goes only into a database where all are empty.
    static let ledgerTables = ["orders", "tombstones", "outbox_events", "delivery_attempts", "callback_receipts", "rejected_callbacks"]

    /// Copies everything `source` holds into the database `settings` names (`pay-sidecar migrate-ledger`), creating
    /// the schema first if it is missing, and returns what was copied.
    ///
    /// One transaction: a copy that fails leaves the target as it was (empty), so it can simply be run again. It
    /// refuses a target that holds any row of a ledger: merging two ledgers could put one mrn in both, and a copy run
    /// twice would deliver every pending event twice under new sequence numbers. The tables are locked (`EXCLUSIVE`:
    /// reads go on, writes wait) before they are checked, so a sidecar already running on the target, or a second copy
    /// at the same time, cannot slip rows in between. Claims are not copied (nobody holds them any more); sequence
    /// numbers are new, in the source's order. Errors name the server, never the password.
    public static func importLedger(from source: some LedgerExporting, into settings: PostgresSettings, logger: Logger,
                                    pageSize: Int = 500) async throws(LedgerError) -> LedgerCounts {
        let configuration = try settings.connectionConfiguration()
        let quiet = quieted(logger)
        let connection: PostgresConnection
        do {
            connection = try await withDeadline(settings.timeout) {
                try await PostgresConnection.connect(configuration: configuration, id: 0, logger: quiet)
            }
        } catch {
            throw LedgerError("cannot reach PostgreSQL at \(settings): \(reason(error))")
        }
        do {
            _ = try await withDeadline(migrationTimeout) { try await migrate(connection, logger: quiet) }
            let counts = try await connection.withTransaction(logger: quiet) { connection in
                // No per-statement deadline for a copy of any size; a lock another session holds fails it in 10 s.
                for (name, value) in [("statement_timeout", "0"), ("idle_in_transaction_session_timeout", "0"), ("lock_timeout", "10s")] {
                    _ = try await connection.query("SELECT set_config(\(name), \(value), true)", logger: quiet).collect()
                }
                _ = try await connection.query(PostgresQuery(unsafeSQL: "LOCK TABLE \(ledgerTables.joined(separator: ", ")) IN EXCLUSIVE MODE"),
                                               logger: quiet).collect()
                var holding: [String] = []
                for table in ledgerTables {
                    let rows = try await connection.query(PostgresQuery(unsafeSQL: "SELECT EXISTS (SELECT 1 FROM \(table))"), logger: quiet).collect()
                    if try rows.first?.decode(Bool.self) == true { holding.append(table) }
                }
                guard holding.isEmpty else { throw TargetNotEmpty(tables: holding) }
                var counts = LedgerCounts()
                try await source.export(pageSize: pageSize) { page in
                    counts.add(page)
                    try await insert(page, into: connection, logger: quiet)
                }
                if counts.pendingEvents > 0 {
                    // Replicas already listening (none should be) look at once.
                    _ = try await connection.query("SELECT pg_notify(\(outboxChannel), '')", logger: quiet).collect()
                }
                return counts
            }
            try? await connection.close()
            return counts
        } catch {
            try? await connection.close()
            if let refused = (error as? PostgresTransactionError)?.closureError as? TargetNotEmpty {
                throw LedgerError("\(settings) already holds a ledger (rows in \(refused.tables.joined(separator: ", "))): migrate-ledger copies into an empty database only")
            }
            throw LedgerError("copying the ledger into PostgreSQL at \(settings) failed, nothing was copied: \(reason(error))")
        }
    }

    /// The target holds rows: nothing is copied.
    private struct TargetNotEmpty: Error {
        let tables: [String]
    }

    /// Inserts one page with one statement (many rows per `VALUES`, well below PostgreSQL's 65,535 parameters).
    private static func insert(_ page: LedgerPage, into connection: PostgresConnection, logger: Logger) async throws {
        switch page {
        case .orders(let orders):
            try await insertRows(orders, table: "orders", columns: OrderColumns.names, connection, logger) { order, b in OrderColumns.append(order, to: &b) }
        case .tombstones(let tombstones):
            try await insertRows(tombstones, table: "tombstones",
                                 columns: ["kind", "mrn", "outcome", "settlement_event_id", "fingerprint", "flag", "pruned_at"], connection, logger) { t, b in
                b.append(t.kind.rawValue)
                b.append(t.mrn)
                b.append(t.outcome.rawValue)
                b.append(t.settlementEventID)
                b.append(t.fingerprint)
                b.append(t.flag?.rawValue)
                b.append(t.prunedAt)
            }
        case .events(let events):
            let columns = ["id", "type", "kind", "mrn", "body", "notify_url", "status", "attempts", "schedule_base", "next_attempt_at", "last_error",
                           "created_at", "delivered_at"]
            try await insertRows(events, table: "outbox_events", columns: columns, connection, logger) { e, b in
                b.append(e.id)
                b.append(e.type.rawValue)
                b.append(e.kind.rawValue)
                b.append(e.mrn)
                b.append(e.body)
                b.append(e.notifyUrl)
                b.append(e.status.rawValue)
                b.append(e.attempts)
                b.append(e.scheduleBase)
                b.append(e.nextAttemptAt)
                b.append(e.lastError)
                b.append(e.createdAt)
                b.append(e.deliveredAt)
            }
        case .attempts(let attempts):
            try await insertRows(attempts, table: "delivery_attempts", columns: ["event_id", "attempt", "url", "status_code", "error", "duration_ms", "at"],
                                 connection, logger) { a, b in
                b.append(a.eventID)
                b.append(a.attempt)
                b.append(a.url)
                b.append(a.statusCode)
                b.append(a.error)
                b.append(a.durationMillis)
                b.append(a.at)
            }
        case .receipts(let receipts):
            try await insertRows(receipts, table: "callback_receipts",
                                 columns: ["kind", "mrn", "outcome", "source", "duplicate", "body", "source_address", "received_at"], connection, logger) { r, b in
                b.append(r.kind.rawValue)
                b.append(r.mrn)
                b.append(r.outcome.rawValue)
                b.append("callback")
                b.append(r.duplicate)
                b.append(r.body)
                b.append(r.sourceAddress)
                b.append(r.at)
            }
        case .rejections(let rejections):
            try await insertRows(rejections, table: "rejected_callbacks", columns: ["kind", "mrn", "reason", "detail", "source_address", "body", "at"],
                                 connection, logger) { r, b in
                b.append(r.kind.rawValue)
                b.append(r.mrn)
                b.append(r.reason)
                b.append(r.detail)
                b.append(r.sourceAddress)
                b.append(r.body)
                b.append(r.at)
            }
        }
    }

    /// `INSERT INTO table (columns) VALUES (...), (...)` for `items`, `bind` appending each item's values in the order
    /// of `columns`.
    private static func insertRows<Item>(_ items: [Item], table: String, columns: [String], _ connection: PostgresConnection, _ logger: Logger,
                                         bind: (Item, inout PostgresBindings) -> Void) async throws {
        guard !items.isEmpty else { return }
        var bindings = PostgresBindings(capacity: items.count * columns.count)
        var tuples: [String] = []
        tuples.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            let base = index * columns.count
            tuples.append("(" + (1...columns.count).map { "$\(base + $0)" }.joined(separator: ", ") + ")")
            bind(item, &bindings)
        }
        let sql = "INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES \(tuples.joined(separator: ", "))"
        _ = try await connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger).collect()
    }
}
