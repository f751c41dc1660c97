import Ledger
import Orders
import PostgresNIO

extension PostgresLedger {
    public func openOrders(limit: Int) async throws -> [Order] {
        try await rows("reading open orders", """
            SELECT * FROM orders WHERE next_query_at IS NOT NULL ORDER BY next_query_at LIMIT \(limit)
            """).map(OrderColumns.decode)
    }

    public func recentlyClosedOrders(limit: Int) async throws -> [Order] {
        try await rows("reading recently closed orders", """
            SELECT * FROM orders WHERE closed_at IS NOT NULL ORDER BY closed_at DESC LIMIT \(limit)
            """).map(OrderColumns.decode)
    }

    /// Scans the window's rows (orders by creation and settlement time, attempts by time): an operator's view,
    /// not a hot path.
    public func activity(since: Millis, bucket: Millis) async throws -> [ActivityBucket] {
        let now = nowMillis()
        var counted: [Millis: (Int, Int, Int)] = [:]
        let creates = try await rows("reading activity", """
            SELECT created_at - created_at % \(bucket) AS b, COUNT(*) FROM orders
            WHERE created_by_sidecar AND created_at >= \(since) GROUP BY b
            """)
        for row in creates { let (b, n) = try row.decode((Int64, Int64).self); counted[b, default: (0, 0, 0)].0 += Int(n) }
        let settlements = try await rows("reading activity", """
            SELECT settled_at - settled_at % \(bucket) AS b, COUNT(*) FROM orders
            WHERE settled_at IS NOT NULL AND settled_at >= \(since) GROUP BY b
            """)
        for row in settlements { let (b, n) = try row.decode((Int64, Int64).self); counted[b, default: (0, 0, 0)].1 += Int(n) }
        let failures = try await rows("reading activity", """
            SELECT at - at % \(bucket) AS b, COUNT(*) FROM delivery_attempts
            WHERE at >= \(since) AND (status_code IS NULL OR status_code < 200 OR status_code >= 300) GROUP BY b
            """)
        for row in failures { let (b, n) = try row.decode((Int64, Int64).self); counted[b, default: (0, 0, 0)].2 += Int(n) }
        return ActivityBucket.series(since: since, now: now, bucket: bucket, counted)
    }
}
