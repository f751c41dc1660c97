import GatewayProtocol
import Ledger
import Orders
import PostgresNIO

/// How an `Order` is stored: one row of `orders`, its flags as a JSON array (`StoredFlags`). Plain values in,
/// plain values out: nothing here reads an order's state.
enum OrderColumns {
    static let names = [
        "kind", "mrn", "amount", "channel_id", "notify_url", "state", "created_by_sidecar", "request", "fingerprint", "response_status",
        "response_body", "verdict", "gateway_code", "send_count", "first_sent_at", "sending_since", "not_found_since", "last_gateway_status",
        "query_count", "next_query_at", "settled_source", "settled_at", "paid_amount", "settlement_event_id", "flag", "flags", "created_at",
        "updated_at", "closed_at", "version", "trace_parent",
    ]

    /// Inserts `$1`... in the order of `names`, unless the (kind, mrn) is tombstoned; `RETURNING` says whether it did.
    static let insertSQL = """
        INSERT INTO orders (\(names.joined(separator: ", ")))
        SELECT \(names.indices.map { "$\($0 + 1)" }.joined(separator: ", "))
        WHERE NOT EXISTS (SELECT 1 FROM tombstones WHERE kind = $1 AND mrn = $2)
        ON CONFLICT DO NOTHING RETURNING version
        """

    /// Every column but the key from `$3`..., where the key (`$1`, `$2`) still holds the expected version.
    static let updateSQL = """
        UPDATE orders SET \(names.indices.dropFirst(2).map { "\(names[$0]) = $\($0 + 1)" }.joined(separator: ", "))
        WHERE kind = $1 AND mrn = $2 AND version = $\(names.count + 1) RETURNING version
        """

    /// The order's values in the order of `names`.
    static func bindings(_ order: Order) -> PostgresBindings {
        var b = PostgresBindings(capacity: names.count + 1)
        append(order, to: &b)
        return b
    }

    /// Appends the order's values, in the order of `names`, to `b`.
    static func append(_ order: Order, to b: inout PostgresBindings) {
        b.append(order.kind.rawValue)
        b.append(order.mrn)
        b.append(order.amount)
        b.append(order.channelId)
        b.append(order.notifyUrl)
        b.append(order.state.rawValue)
        b.append(order.createdBySidecar)
        b.append(order.request)
        b.append(order.fingerprint)
        b.append(order.answer?.status)
        b.append(order.answer?.body)
        b.append(order.verdict?.rawValue)
        b.append(order.gatewayCode)
        b.append(order.sendCount)
        b.append(order.firstSentAt)
        b.append(order.sendingSince)
        b.append(order.notFoundSince)
        b.append(order.lastGatewayStatus)
        b.append(order.queryCount)
        b.append(order.nextQueryAt)
        b.append(order.settledSource?.rawValue)
        b.append(order.settledAt)
        b.append(order.paidAmount)
        b.append(order.settlementEventID)
        b.append(order.flag?.code.rawValue)
        b.append(order.flags.isEmpty ? nil : StoredFlags.encode(order.flags))
        b.append(order.createdAt)
        b.append(order.updatedAt)
        b.append(order.closedAt)
        b.append(order.version)
        b.append(order.traceParent)
    }

    static func decode(_ row: PostgresRow) throws -> Order {
        let c = Columns(row)
        guard let kind = OrderKind(rawValue: try c("kind")), let state = OrderState(rawValue: try c("state")) else {
            throw LedgerError("an order row holds an unknown kind or state")
        }
        var order = Order(kind: kind, mrn: try c("mrn"), amount: try c("amount"), channelId: try c("channel_id"), notifyUrl: try c("notify_url"),
                          state: state, createdBySidecar: try c("created_by_sidecar"), request: try c("request"), fingerprint: try c("fingerprint"),
                          createdAt: try c("created_at"))
        if let status: Int = try c("response_status"), let body: String = try c("response_body") { order.answer = RecordedAnswer(status: status, body: body) }
        order.verdict = (try c("verdict", as: String?.self)).flatMap(CreateVerdict.init(rawValue:))
        order.gatewayCode = try c("gateway_code")
        order.sendCount = try c("send_count")
        order.firstSentAt = try c("first_sent_at")
        order.sendingSince = try c("sending_since")
        order.notFoundSince = try c("not_found_since")
        order.lastGatewayStatus = try c("last_gateway_status")
        order.queryCount = try c("query_count")
        order.nextQueryAt = try c("next_query_at")
        order.settledSource = (try c("settled_source", as: String?.self)).flatMap(SettlementSource.init(rawValue:))
        order.settledAt = try c("settled_at")
        order.paidAmount = try c("paid_amount")
        order.settlementEventID = try c("settlement_event_id")
        order.flags = (try c("flags", as: String?.self)).map(StoredFlags.decode) ?? []
        order.updatedAt = try c("updated_at")
        order.closedAt = try c("closed_at")
        order.version = try c("version")
        order.traceParent = try c("trace_parent")
        return order
    }
}

enum TombstoneColumns {
    static func decode(_ row: PostgresRow) throws -> Tombstone {
        let c = Columns(row)
        guard let kind = OrderKind(rawValue: try c("kind")), let outcome = OrderState(rawValue: try c("outcome")) else {
            throw LedgerError("a tombstone row holds an unknown kind or outcome")
        }
        return Tombstone(kind: kind, mrn: try c("mrn"), outcome: outcome, settlementEventID: try c("settlement_event_id"), fingerprint: try c("fingerprint"),
                         flag: (try c("flag", as: String?.self)).flatMap(FlagCode.init(rawValue:)), prunedAt: try c("pruned_at"))
    }
}

extension PostgresLedger {
    // MARK: The journal

    public func journaled(_ kind: OrderKind, _ mrn: String) async throws -> Journaled {
        try await guardedOnConnection("reading the journal") { connection, logger in
            try await Self.journaled(connection, kind, mrn, logger: logger)
        }
    }

    static func journaled(_ connection: PostgresConnection, _ kind: OrderKind, _ mrn: String, logger: Logger) async throws -> Journaled {
        if let row = try await connection.query("SELECT * FROM orders WHERE kind = \(kind.rawValue) AND mrn = \(mrn)", logger: logger).collect().first {
            return .order(try OrderColumns.decode(row))
        }
        if let row = try await connection.query("SELECT * FROM tombstones WHERE kind = \(kind.rawValue) AND mrn = \(mrn)", logger: logger).collect().first {
            return .tombstone(try TombstoneColumns.decode(row))
        }
        return .nothing
    }

    /// Serializes writers that create or remove the order (kind, mrn) until the transaction ends: an insert's
    /// tombstone check and a prune's delete-and-tombstone cannot interleave (with READ COMMITTED alone, an insert
    /// could miss a tombstone committed between its check and its write, and journal a pruned mrn anew).
    /// Updates need no lock: their version check is atomic.
    static func lockOrder(_ connection: PostgresConnection, _ kind: OrderKind, _ mrn: String, logger: Logger) async throws {
        let key = "order/\(kind.rawValue)/\(mrn)"
        _ = try await connection.query("SELECT pg_advisory_xact_lock(hashtextextended(\(key), 0))", logger: logger).collect()
    }

    public func commit(_ write: JournalWrite) async throws -> CommitResult {
        try await transaction("a journal write") { [queryLogger] connection in
            switch write.order {
            case .insert(let order)?:
                try await Self.lockOrder(connection, order.kind, order.mrn, logger: queryLogger)
                let inserted = try await connection.query(PostgresQuery(unsafeSQL: OrderColumns.insertSQL, binds: OrderColumns.bindings(order)), logger: queryLogger).collect()
                // Refused (journaled or tombstoned): nothing was written; what is there decides again.
                if inserted.isEmpty { return .conflict(try await Self.journaled(connection, order.kind, order.mrn, logger: queryLogger)) }
            case .update(let order, let expected)?:
                var bindings = OrderColumns.bindings(order)
                bindings.append(expected)
                let updated = try await connection.query(PostgresQuery(unsafeSQL: OrderColumns.updateSQL, binds: bindings), logger: queryLogger).collect()
                if updated.isEmpty { return .conflict(try await Self.journaled(connection, order.kind, order.mrn, logger: queryLogger)) }
            case .delete(let kind, let mrn, let expected)?:
                try await Self.lockOrder(connection, kind, mrn, logger: queryLogger)
                let deleted = try await connection.query("""
                    DELETE FROM orders WHERE kind = \(kind.rawValue) AND mrn = \(mrn) AND version = \(expected) RETURNING version
                    """, logger: queryLogger).collect()
                if deleted.isEmpty { return .conflict(try await Self.journaled(connection, kind, mrn, logger: queryLogger)) }
                _ = try await connection.query("DELETE FROM callback_receipts WHERE kind = \(kind.rawValue) AND mrn = \(mrn)", logger: queryLogger).collect()
            case nil:
                break
            }
            if let t = write.tombstone {
                _ = try await connection.query("""
                    INSERT INTO tombstones (kind, mrn, outcome, settlement_event_id, fingerprint, flag, pruned_at)
                    VALUES (\(t.kind.rawValue), \(t.mrn), \(t.outcome.rawValue), \(t.settlementEventID), \(t.fingerprint), \(t.flag?.rawValue), \(t.prunedAt))
                    ON CONFLICT (kind, mrn) DO UPDATE SET outcome = EXCLUDED.outcome, settlement_event_id = EXCLUDED.settlement_event_id,
                        fingerprint = EXCLUDED.fingerprint, flag = EXCLUDED.flag, pruned_at = EXCLUDED.pruned_at
                    """, logger: queryLogger).collect()
            }
            var queued = false
            for event in write.events {
                // An id already in the outbox is the same fact emitted again: kept once.
                let rows = try await connection.query("""
                    INSERT INTO outbox_events (id, type, kind, mrn, body, notify_url, status, next_attempt_at, created_at, trace_parent)
                    VALUES (\(event.id), \(event.type.rawValue), \(event.kind.rawValue), \(event.mrn), \(event.body), \(event.notifyUrl), 'pending',
                            \(event.createdAt), \(event.createdAt), \(event.traceParent))
                    ON CONFLICT (id) DO NOTHING RETURNING seq
                    """, logger: queryLogger).collect()
                queued = queued || !rows.isEmpty
            }
            if let r = write.receipt {
                _ = try await connection.query("""
                    INSERT INTO callback_receipts (kind, mrn, outcome, source, duplicate, body, source_address, received_at)
                    VALUES (\(r.kind.rawValue), \(r.mrn), \(r.outcome.rawValue), 'callback', \(r.duplicate), \(r.body), \(r.sourceAddress), \(r.at))
                    """, logger: queryLogger).collect()
            }
            if queued {
                // Delivered to the listeners (every replica's dispatcher) when this transaction commits, not before.
                _ = try await connection.query("SELECT pg_notify(\(Self.outboxChannel), '')", logger: queryLogger).collect()
            }
            return .committed
        }
    }

    public func claimDueOrders(now: Millis, lease: Millis, limit: Int) async throws -> [Order] {
        guard limit > 0 else { return [] }
        // One statement: the due rows are locked as they are picked (rows another replica is claiming are skipped,
        // rows it has just claimed no longer match once re-checked), moved to the end of their lease and bumped.
        let rows = try await rows("claiming due orders", """
            WITH due AS (
                SELECT kind, mrn, next_query_at AS due_at FROM orders
                WHERE next_query_at IS NOT NULL AND next_query_at <= \(now)
                ORDER BY next_query_at LIMIT \(limit)
                FOR UPDATE SKIP LOCKED
            )
            UPDATE orders o SET next_query_at = \(now + lease), version = o.version + 1
            FROM due WHERE o.kind = due.kind AND o.mrn = due.mrn
            RETURNING o.*, due.due_at
            """)
        return try rows.map { (try Columns($0)("due_at", as: Int64.self), try OrderColumns.decode($0)) }
            .sorted { $0.0 < $1.0 }
            .map(\.1)
    }

    public func closedOrders(before: Millis, limit: Int) async throws -> [Order] {
        try await rows("reading closed orders", """
            SELECT * FROM orders WHERE closed_at IS NOT NULL AND closed_at < \(before) ORDER BY closed_at LIMIT \(limit)
            """).map(OrderColumns.decode)
    }

    public func pruneTombstones(before: Millis) async throws -> Int {
        let rows = try await rows("pruning tombstones", """
            WITH gone AS (DELETE FROM tombstones WHERE pruned_at < \(before) RETURNING 1) SELECT COUNT(*) FROM gone
            """)
        return try rows.first?.decode(Int.self) ?? 0
    }

    public func flaggedOrders(limit: Int) async throws -> [Order] {
        try await rows("reading flagged orders", """
            SELECT * FROM orders WHERE flag IS NOT NULL ORDER BY updated_at DESC LIMIT \(limit)
            """).map(OrderColumns.decode)
    }
}
