import GRDB
import GatewayProtocol
import Orders

/// How an `Order` is stored: one row of `orders`, its flags as a JSON array. Plain values in, plain values out.
enum OrderRow {
    static let columns = [
        "kind", "mrn", "amount", "channel_id", "notify_url", "state", "created_by_sidecar", "request", "fingerprint", "response_status",
        "response_body", "verdict", "gateway_code", "send_count", "first_sent_at", "sending_since", "not_found_since", "last_gateway_status",
        "query_count", "next_query_at", "settled_source", "settled_at", "paid_amount", "settlement_event_id", "flag", "flags", "created_at",
        "updated_at", "closed_at", "version", "trace_parent",
    ]

    static let insertSQL = "INSERT INTO orders (\(columns.joined(separator: ", "))) VALUES (\(columns.map { _ in "?" }.joined(separator: ", "))) ON CONFLICT DO NOTHING"
    /// Every column but the key, then the key and the version the update is based on.
    static let updateSQL = "UPDATE orders SET \(columns.dropFirst(2).map { "\($0) = ?" }.joined(separator: ", ")) WHERE kind = ? AND mrn = ? AND version = ?"

    static func values(_ order: Order) -> [(any DatabaseValueConvertible)?] {
        [
            order.kind.rawValue, order.mrn, order.amount, order.channelId, order.notifyUrl, order.state.rawValue, order.createdBySidecar, order.request,
            order.fingerprint, order.answer?.status, order.answer?.body, order.verdict?.rawValue, order.gatewayCode, order.sendCount, order.firstSentAt,
            order.sendingSince, order.notFoundSince, order.lastGatewayStatus, order.queryCount, order.nextQueryAt, order.settledSource?.rawValue,
            order.settledAt, order.paidAmount, order.settlementEventID, order.flag?.code.rawValue, order.flags.isEmpty ? nil : StoredFlags.encode(order.flags),
            order.createdAt, order.updatedAt, order.closedAt, order.version, order.traceParent,
        ]
    }

    static func insertArguments(_ order: Order) -> StatementArguments {
        StatementArguments(values(order))
    }

    static func updateArguments(_ order: Order, expectedVersion: Int) -> StatementArguments {
        let all = values(order)
        return StatementArguments(Array(all.dropFirst(2)) + [all[0], all[1], expectedVersion])
    }

    static func decode(_ row: Row) throws -> Order {
        guard let kind = OrderKind(rawValue: row["kind"]), let state = OrderState(rawValue: row["state"]) else {
            throw LedgerError("an order row holds an unknown kind or state")
        }
        var order = Order(kind: kind, mrn: row["mrn"], amount: row["amount"], channelId: row["channel_id"], notifyUrl: row["notify_url"], state: state,
                          createdBySidecar: row["created_by_sidecar"], request: row["request"], fingerprint: row["fingerprint"], createdAt: row["created_at"])
        if let status: Int = row["response_status"], let body: String = row["response_body"] { order.answer = RecordedAnswer(status: status, body: body) }
        order.verdict = (row["verdict"] as String?).flatMap(CreateVerdict.init(rawValue:))
        order.gatewayCode = row["gateway_code"]
        order.sendCount = row["send_count"]
        order.firstSentAt = row["first_sent_at"]
        order.sendingSince = row["sending_since"]
        order.notFoundSince = row["not_found_since"]
        order.lastGatewayStatus = row["last_gateway_status"]
        order.queryCount = row["query_count"]
        order.nextQueryAt = row["next_query_at"]
        order.settledSource = (row["settled_source"] as String?).flatMap(SettlementSource.init(rawValue:))
        order.settledAt = row["settled_at"]
        order.paidAmount = row["paid_amount"]
        order.settlementEventID = row["settlement_event_id"]
        order.flags = (row["flags"] as String?).map(StoredFlags.decode) ?? []
        order.updatedAt = row["updated_at"]
        order.closedAt = row["closed_at"]
        order.version = row["version"]
        order.traceParent = row["trace_parent"]
        return order
    }
}

enum TombstoneRow {
    static func decode(_ row: Row) throws -> Tombstone {
        guard let kind = OrderKind(rawValue: row["kind"]), let outcome = OrderState(rawValue: row["outcome"]) else {
            throw LedgerError("a tombstone row holds an unknown kind or outcome")
        }
        return Tombstone(kind: kind, mrn: row["mrn"], outcome: outcome, settlementEventID: row["settlement_event_id"], fingerprint: row["fingerprint"],
                         flag: (row["flag"] as String?).flatMap(FlagCode.init(rawValue:)), prunedAt: row["pruned_at"])
    }
}
