import GRDB
import GatewayProtocol
import Orders

extension SQLiteLedger: LedgerExporting {
    /// Reads every table page by page, each in key order (keyset pagination: a page costs the same at any depth).
    /// Meant for a ledger no sidecar uses: this instance holds the lock file, so nothing writes meanwhile.
    public func export(pageSize: Int = 500, to sink: (LedgerPage) async throws -> Void) async throws {
        let limit = max(1, pageSize)
        var orderKey = (kind: "", mrn: "")
        while true {
            let after = orderKey
            let orders = try await pool.read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM orders WHERE (kind, mrn) > (?, ?) ORDER BY kind, mrn LIMIT ?",
                                 arguments: [after.kind, after.mrn, limit]).map(OrderRow.decode)
            }
            guard let last = orders.last else { break }
            orderKey = (last.kind.rawValue, last.mrn)
            try await sink(.orders(orders))
        }
        var tombstoneKey = (kind: "", mrn: "")
        while true {
            let after = tombstoneKey
            let tombstones = try await pool.read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM tombstones WHERE (kind, mrn) > (?, ?) ORDER BY kind, mrn LIMIT ?",
                                 arguments: [after.kind, after.mrn, limit]).map(TombstoneRow.decode)
            }
            guard let last = tombstones.last else { break }
            tombstoneKey = (last.kind.rawValue, last.mrn)
            try await sink(.tombstones(tombstones))
        }
        try await exportByID(table: "outbox_events", key: "seq", limit: limit, decode: Self.event) { try await sink(.events($0)) }
        try await exportByID(table: "delivery_attempts", key: "id", limit: limit, decode: { r in
            DeliveryAttempt(eventID: r["event_id"], attempt: r["attempt"], url: r["url"], statusCode: r["status_code"], error: r["error"],
                            durationMillis: r["duration_ms"], at: r["at"])
        }) { try await sink(.attempts($0)) }
        try await exportByID(table: "callback_receipts", key: "id", limit: limit, decode: { r in
            guard let kind = OrderKind(rawValue: r["kind"]), let outcome = OrderState(rawValue: r["outcome"]) else {
                throw LedgerError("a callback receipt holds an unknown kind or outcome")
            }
            return CallbackReceipt(kind: kind, mrn: r["mrn"], outcome: outcome, duplicate: r["duplicate"], body: r["body"] ?? "",
                                   sourceAddress: r["source_address"], at: r["received_at"])
        }) { try await sink(.receipts($0)) }
        try await exportByID(table: "rejected_callbacks", key: "id", limit: limit, decode: { r in
            RejectedCallback(kind: OrderKind(rawValue: r["kind"]) ?? .deposit, mrn: r["mrn"], reason: r["reason"], detail: r["detail"],
                             sourceAddress: r["source_address"], body: r["body"], at: r["at"])
        }) { try await sink(.rejections($0)) }
    }

    /// Pages of `table` in the order of its integer `key`, each row decoded inside the read.
    private func exportByID<Value: Sendable>(table: String, key: String, limit: Int, decode: @escaping @Sendable (Row) throws -> Value,
                                             _ page: ([Value]) async throws -> Void) async throws {
        var after: Int64 = .min
        while true {
            let from = after
            let rows = try await pool.read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM \(table) WHERE \(key) > ? ORDER BY \(key) LIMIT ?", arguments: [from, limit])
                    .map { row -> (Int64, Value) in (row[key], try decode(row)) }
            }
            guard let last = rows.last else { return }
            after = last.0
            try await page(rows.map(\.1))
        }
    }
}
