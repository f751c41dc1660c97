import GRDB

extension SQLiteLedger {
    /// The schema, one migration per version. Each runs once, in order, inside a transaction.
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
        migrator.registerMigration("v4: the order state machine's values, tombstones, fewer pages per commit") { db in
            // The orders table becomes WITHOUT ROWID (keyed by kind and mrn: one b-tree instead of a table and
            // its key index) with partial indexes over what the code looks for (due queries, final orders,
            // flags), so a create's commits write fewer pages. From here on the storage never interprets an
            // order's state; this one-time conversion of v3's rows is the only SQL that reads state words.
            try db.execute(sql: """
                CREATE TABLE orders_v4 (
                    kind TEXT NOT NULL,
                    mrn TEXT NOT NULL,
                    amount TEXT NOT NULL,
                    channel_id INTEGER,
                    notify_url TEXT,
                    state TEXT NOT NULL,
                    created_by_sidecar INTEGER NOT NULL,
                    request TEXT,
                    fingerprint TEXT,
                    response_status INTEGER,
                    response_body TEXT,
                    verdict TEXT,
                    gateway_code TEXT,
                    send_count INTEGER NOT NULL,
                    first_sent_at INTEGER,
                    sending_since INTEGER,
                    not_found_since INTEGER,
                    last_gateway_status INTEGER,
                    query_count INTEGER NOT NULL,
                    next_query_at INTEGER,
                    settled_source TEXT,
                    settled_at INTEGER,
                    paid_amount TEXT,
                    settlement_event_id TEXT,
                    flag TEXT,
                    flags TEXT,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL,
                    closed_at INTEGER,
                    version INTEGER NOT NULL,
                    PRIMARY KEY (kind, mrn)
                ) WITHOUT ROWID;
                INSERT INTO orders_v4
                SELECT o.kind, o.mrn, o.amount, o.channel_id, o.notify_url, o.state, o.known, o.request, o.fingerprint, o.response_status,
                    o.response_body,
                    CASE WHEN o.response_status IS NULL THEN NULL
                         WHEN o.state = 'rejected' AND o.gateway_code = 'not_sent' THEN 'not_sent'
                         WHEN o.response_status >= 500 THEN 'unknown'
                         WHEN o.response_status >= 400 THEN 'rejected'
                         ELSE 'accepted' END,
                    o.gateway_code,
                    CASE WHEN o.known = 0 OR o.state = 'sending' OR (o.state = 'rejected' AND o.gateway_code = 'not_sent') THEN 0 ELSE 1 END,
                    CASE WHEN o.known = 0 OR o.state = 'sending' OR (o.state = 'rejected' AND o.gateway_code = 'not_sent') THEN NULL ELSE o.created_at END,
                    CASE WHEN o.state = 'sending' THEN o.updated_at END,
                    NULL, o.last_gateway_status, o.query_count,
                    CASE WHEN o.state = 'sending' THEN o.updated_at ELSE o.next_query_at END,
                    o.settled_source, o.settled_at, o.paid_amount,
                    (SELECT e.id FROM outbox_events e WHERE e.kind = o.kind AND e.mrn = o.mrn ORDER BY e.seq LIMIT 1),
                    CASE WHEN o.flag IS NULL THEN NULL WHEN o.flag LIKE '%HORIZON%' THEN 'past_horizon' ELSE 'contradicting_outcome' END,
                    CASE WHEN o.flag IS NULL THEN NULL ELSE json_array(json_object(
                        'code', CASE WHEN o.flag LIKE '%HORIZON%' THEN 'past_horizon' ELSE 'contradicting_outcome' END,
                        'detail', o.flag, 'at', o.updated_at)) END,
                    o.created_at, o.updated_at,
                    CASE WHEN o.state IN ('succeeded', 'failed', 'rejected') THEN o.updated_at END,
                    1
                FROM orders o;
                DROP TABLE orders;
                ALTER TABLE orders_v4 RENAME TO orders;
                CREATE INDEX orders_due ON orders(next_query_at) WHERE next_query_at IS NOT NULL;
                CREATE INDEX orders_closed ON orders(closed_at) WHERE closed_at IS NOT NULL;
                CREATE INDEX orders_flagged ON orders(updated_at) WHERE flag IS NOT NULL;
                CREATE TABLE tombstones (
                    kind TEXT NOT NULL,
                    mrn TEXT NOT NULL,
                    outcome TEXT NOT NULL,
                    settlement_event_id TEXT,
                    fingerprint TEXT,
                    flag TEXT,
                    pruned_at INTEGER NOT NULL,
                    PRIMARY KEY (kind, mrn)
                ) WITHOUT ROWID;
                CREATE INDEX tombstones_by_age ON tombstones(pruned_at);
                CREATE INDEX outbox_delivered ON outbox_events(delivered_at) WHERE delivered_at IS NOT NULL;
                """)
        }
        migrator.registerMigration("v5: outbox claims name their owner") { db in
            // Claims are renewed while an attempt runs; the owner tells whose an attempt's claim still is when it
            // comes back (`AttemptSettlement`).
            try db.execute(sql: "ALTER TABLE outbox_events ADD COLUMN claimed_by TEXT")
        }
        migrator.registerMigration("v6: the trace context of creates, carried to their webhooks") { db in
            // Plain nullable columns: rows from before hold none, and their webhooks simply start no trace.
            try db.execute(sql: """
                ALTER TABLE orders ADD COLUMN trace_parent TEXT;
                ALTER TABLE outbox_events ADD COLUMN trace_parent TEXT;
                """)
        }
        return migrator
    }
}
