import GRDB
import Orders

extension SQLiteLedger {
    public func openOrders(limit: Int) async throws -> [Order] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM orders WHERE next_query_at IS NOT NULL ORDER BY next_query_at LIMIT ?", arguments: [limit])
                .map(OrderRow.decode)
        }
    }

    public func recentlyClosedOrders(limit: Int) async throws -> [Order] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM orders WHERE closed_at IS NOT NULL ORDER BY closed_at DESC LIMIT ?", arguments: [limit])
                .map(OrderRow.decode)
        }
    }

    /// Scans the window's rows (orders by creation and settlement time, attempts by time): an operator's view,
    /// not a hot path.
    public func activity(since: Millis, bucket: Millis) async throws -> [ActivityBucket] {
        let now = nowMillis()
        return try await pool.read { db in
            var counted: [Millis: (Int, Int, Int)] = [:]
            func add(_ sql: String, _ update: (inout (Int, Int, Int), Int) -> Void) throws {
                for row in try Row.fetchAll(db, sql: sql, arguments: ["bucket": bucket, "since": since]) {
                    let start: Millis = row[0]
                    update(&counted[start, default: (0, 0, 0)], row[1])
                }
            }
            try add("""
                SELECT created_at - created_at % :bucket AS b, COUNT(*) FROM orders
                WHERE created_by_sidecar = 1 AND created_at >= :since GROUP BY b
                """) { $0.0 += $1 }
            try add("""
                SELECT settled_at - settled_at % :bucket AS b, COUNT(*) FROM orders
                WHERE settled_at IS NOT NULL AND settled_at >= :since GROUP BY b
                """) { $0.1 += $1 }
            try add("""
                SELECT at - at % :bucket AS b, COUNT(*) FROM delivery_attempts
                WHERE at >= :since AND (status_code IS NULL OR status_code < 200 OR status_code >= 300) GROUP BY b
                """) { $0.2 += $1 }
            return ActivityBucket.series(since: since, now: now, bucket: bucket, counted)
        }
    }
}
