import Logging
import Orders
import PostgresNIO

extension PostgresLedger {
    /// One schema version: the statements that make it, run in order inside the migration's transaction.
    /// (One statement each: the extended query protocol takes no statement lists.)
    struct Migration: Sendable {
        let version: Int
        let name: String
        let statements: [String]
    }

    /// The schema, one migration per version; each runs once, in order, all pending ones in one transaction.
    ///
    /// Version 1 mirrors the SQLite ledger's v4 tables column for column, so both hold the same plain values:
    /// amounts are text (exactly as sent), times are BIGINT milliseconds since 1970, integers BIGINT (what
    /// postgres-nio binds a Swift `Int` as), flags a JSON array in text. Partial indexes cover what the code looks
    /// for (due queries, final orders, flags, due and delivered events), as in SQLite.
    static let migrations: [Migration] = [
        Migration(version: 1, name: "journal, tombstones, receipts, outbox, attempts, rejections", statements: [
            """
            CREATE TABLE orders (
                kind TEXT NOT NULL,
                mrn TEXT NOT NULL,
                amount TEXT NOT NULL,
                channel_id BIGINT,
                notify_url TEXT,
                state TEXT NOT NULL,
                created_by_sidecar BOOLEAN NOT NULL,
                request TEXT,
                fingerprint TEXT,
                response_status BIGINT,
                response_body TEXT,
                verdict TEXT,
                gateway_code TEXT,
                send_count BIGINT NOT NULL,
                first_sent_at BIGINT,
                sending_since BIGINT,
                not_found_since BIGINT,
                last_gateway_status BIGINT,
                query_count BIGINT NOT NULL,
                next_query_at BIGINT,
                settled_source TEXT,
                settled_at BIGINT,
                paid_amount TEXT,
                settlement_event_id TEXT,
                flag TEXT,
                flags TEXT,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                closed_at BIGINT,
                version BIGINT NOT NULL,
                PRIMARY KEY (kind, mrn)
            )
            """,
            "CREATE INDEX orders_due ON orders (next_query_at) WHERE next_query_at IS NOT NULL",
            "CREATE INDEX orders_closed ON orders (closed_at) WHERE closed_at IS NOT NULL",
            "CREATE INDEX orders_flagged ON orders (updated_at) WHERE flag IS NOT NULL",
            """
            CREATE TABLE tombstones (
                kind TEXT NOT NULL,
                mrn TEXT NOT NULL,
                outcome TEXT NOT NULL,
                settlement_event_id TEXT,
                fingerprint TEXT,
                flag TEXT,
                pruned_at BIGINT NOT NULL,
                PRIMARY KEY (kind, mrn)
            )
            """,
            "CREATE INDEX tombstones_by_age ON tombstones (pruned_at)",
            """
            CREATE TABLE callback_receipts (
                id BIGSERIAL PRIMARY KEY,
                kind TEXT NOT NULL,
                mrn TEXT NOT NULL,
                outcome TEXT NOT NULL,
                source TEXT NOT NULL,
                duplicate BOOLEAN NOT NULL,
                body TEXT,
                source_address TEXT,
                received_at BIGINT NOT NULL
            )
            """,
            "CREATE INDEX receipts_by_order ON callback_receipts (kind, mrn)",
            // `seq` orders the events API. It is drawn at insert, not at commit, so a page read while two commits
            // are in flight may see the later seq first; delivery never depends on it.
            """
            CREATE TABLE outbox_events (
                seq BIGSERIAL PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                type TEXT NOT NULL,
                kind TEXT NOT NULL,
                mrn TEXT NOT NULL,
                body TEXT NOT NULL,
                notify_url TEXT,
                status TEXT NOT NULL,
                attempts BIGINT NOT NULL DEFAULT 0,
                schedule_base BIGINT NOT NULL DEFAULT 0,
                next_attempt_at BIGINT,
                claimed_until BIGINT,
                last_error TEXT,
                created_at BIGINT NOT NULL,
                delivered_at BIGINT
            )
            """,
            "CREATE INDEX outbox_due ON outbox_events (next_attempt_at, seq) WHERE status = 'pending'",
            "CREATE INDEX outbox_by_status ON outbox_events (status, seq)",
            "CREATE INDEX outbox_by_mrn ON outbox_events (mrn)",
            "CREATE INDEX outbox_delivered ON outbox_events (delivered_at) WHERE delivered_at IS NOT NULL",
            """
            CREATE TABLE delivery_attempts (
                id BIGSERIAL PRIMARY KEY,
                event_id TEXT NOT NULL REFERENCES outbox_events (id),
                attempt BIGINT NOT NULL,
                url TEXT NOT NULL,
                status_code BIGINT,
                error TEXT,
                duration_ms BIGINT NOT NULL,
                at BIGINT NOT NULL
            )
            """,
            "CREATE INDEX attempts_by_event ON delivery_attempts (event_id)",
            """
            CREATE TABLE rejected_callbacks (
                id BIGSERIAL PRIMARY KEY,
                kind TEXT NOT NULL,
                mrn TEXT,
                reason TEXT NOT NULL,
                detail TEXT NOT NULL,
                source_address TEXT NOT NULL,
                body TEXT NOT NULL,
                at BIGINT NOT NULL
            )
            """,
        ]),
        // Claims are renewed while an attempt runs; the owner tells whose an attempt's claim still is when it comes
        // back (`AttemptSettlement`).
        Migration(version: 2, name: "outbox claims name their owner", statements: [
            "ALTER TABLE outbox_events ADD COLUMN claimed_by TEXT",
        ]),
        // As SQLite's v6: the trace context of creates, carried to their webhooks (nullable; older rows hold none).
        Migration(version: 3, name: "the trace context of creates, carried to their webhooks", statements: [
            "ALTER TABLE orders ADD COLUMN trace_parent TEXT",
            "ALTER TABLE outbox_events ADD COLUMN trace_parent TEXT",
        ]),
    ]

    /// The schema versions this build knows, oldest first.
    public static var schemaVersions: [Int] { migrations.map(\.version) }

    /// Applies the migrations this database lacks, in one transaction, and returns their versions.
    ///
    /// The transaction first takes an advisory lock (transaction-scoped: it goes with the COMMIT or ROLLBACK, never
    /// left behind on a connection): replicas starting together queue on it, and each finds in
    /// `schema_migrations` what the one before it applied, so every migration runs once. DDL is transactional in
    /// PostgreSQL: a migration that fails leaves nothing half made.
    static func migrate(_ connection: PostgresConnection, logger: Logger) async throws -> [Int] {
        try await connection.withTransaction(logger: logger) { connection in
            // The session's statement_timeout (the per-call deadline) would cut a wait for another replica's
            // migration, or a long migration; the caller bounds the whole by `migrationTimeout` instead.
            let limit = "\(milliseconds(migrationTimeout))"
            _ = try await connection.query("SELECT set_config('statement_timeout', \(limit), true)", logger: logger).collect()
            _ = try await connection.query("SELECT pg_advisory_xact_lock(hashtextextended('pay-sidecar schema migrations', 0))", logger: logger).collect()
            _ = try await connection.query("""
                CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())
                """, logger: logger).collect()
            var present = Set<Int>()
            for row in try await connection.query("SELECT version FROM schema_migrations", logger: logger).collect() {
                present.insert(try row.decode(Int.self))
            }
            var applied: [Int] = []
            for migration in migrations where !present.contains(migration.version) {
                for statement in migration.statements {
                    _ = try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger).collect()
                }
                _ = try await connection.query("INSERT INTO schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))",
                                               logger: logger).collect()
                applied.append(migration.version)
            }
            return applied
        }
    }
}
