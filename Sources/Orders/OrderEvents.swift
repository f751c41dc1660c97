import Crypto
import GatewayProtocol

/// The webhooks the sidecar emits (contract sections 5 and 9).
public enum EventType: String, Sendable, Hashable, CaseIterable {
    case depositSucceeded = "deposit.succeeded"
    case depositFailed = "deposit.failed"
    case depositFlagged = "deposit.flagged"
    case payoutSucceeded = "payout.succeeded"
    case payoutFailed = "payout.failed"
    case payoutFlagged = "payout.flagged"

    /// The settlement event of `kind` for `outcome` (succeeded or failed).
    public static func settlement(_ kind: OrderKind, succeeded: Bool) -> EventType {
        switch (kind, succeeded) {
        case (.deposit, true): return .depositSucceeded
        case (.deposit, false): return .depositFailed
        case (.payout, true): return .payoutSucceeded
        case (.payout, false): return .payoutFailed
        }
    }

    public static func flagged(_ kind: OrderKind) -> EventType {
        kind == .deposit ? .depositFlagged : .payoutFlagged
    }
}

/// An event to queue in the outbox, with its body fixed: written in the same transaction as the order
/// change that caused it.
public struct OutboxDraft: Sendable, Hashable {
    /// The `webhook-id`: the same on every attempt, and the same if the same fact is ever emitted again.
    public var id: String
    public var type: EventType
    public var kind: OrderKind
    public var mrn: String
    /// The whole webhook body (JSON text).
    public var body: String
    /// The order's own target, if it named one.
    public var notifyUrl: String?
    public var createdAt: Millis
    /// The order's `traceparent` (its create's trace), sent with the webhook.
    public var traceParent: String?

    public init(id: String, type: EventType, kind: OrderKind, mrn: String, body: String, notifyUrl: String?, createdAt: Millis, traceParent: String? = nil) {
        self.id = id
        self.type = type
        self.kind = kind
        self.mrn = mrn
        self.body = body
        self.notifyUrl = notifyUrl
        self.createdAt = createdAt
        self.traceParent = traceParent
    }
}

/// The one place event bodies and ids are built.
///
/// Ids are derived from what the event is about (the order's kind, mrn and creation time, and which fact:
/// its settlement, or its n-th flag), not drawn at random: the same fact emitted twice, by a replay, two
/// replicas or a restored backup, carries the same `webhook-id`, which receivers deduplicate on, and the
/// outbox's unique key refuses the second copy.
public enum EventFactory {
    /// `evt_` and 28 hex digits of SHA-256 over the fact's identity.
    static func id(_ parts: String...) -> String {
        let digest = SHA256.hash(data: Array(parts.joined(separator: "\u{1F}").utf8))
        return "evt_" + hex(digest.prefix(14))
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// The id of an order's one settlement event.
    static func settlementID(_ order: Order) -> String {
        id(order.kind.rawValue, order.mrn, String(order.createdAt), "settlement")
    }

    /// The order's settlement event (`*.succeeded` / `*.failed`), from the order as it is once settled.
    static func settlement(_ order: Order, at now: Millis) -> OutboxDraft {
        let type = EventType.settlement(order.kind, succeeded: order.state == .succeeded)
        let id = settlementID(order)
        var data: [JSONValue.JSONMember] = [.init("mrn", .string(order.mrn))]
        data.append(.init("amount", order.paidAmount.map(JSONValue.string) ?? .null))
        data.append(.init("amountConfirmed", .bool(order.amountConfirmed)))
        switch order.kind {
        case .deposit:
            data.append(.init("originAmount", .string(order.amount)))
            data.append(.init("channelId", order.channelId.map { .number(String($0)) } ?? .null))
            if let paid = order.paidAmount { data.append(.init("amountMismatch", .bool(!sameAmount(paid, order.amount)))) }
        case .payout:
            data.append(.init("orderAmount", .string(order.amount)))
        }
        data.append(.init("source", order.settledSource.map { .string($0.rawValue) } ?? .null))
        data.append(.init("knownOrder", .bool(order.createdBySidecar)))
        if let flag = order.flag { data.append(.init("flag", .string(flag.code.rawValue))) }
        return OutboxDraft(id: id, type: type, kind: order.kind, mrn: order.mrn, body: wrap(type, data, at: now),
                           notifyUrl: order.notifyUrl, createdAt: now, traceParent: order.traceParent)
    }

    /// The `*.flagged` event for the order's flag number `index` (its position in `order.flags`).
    static func flagged(_ order: Order, index: Int, reported: ReportedAmounts, at now: Millis) -> OutboxDraft {
        let flag = order.flags[index]
        let type = EventType.flagged(order.kind)
        let id = id(order.kind.rawValue, order.mrn, String(order.createdAt), "flag", String(index), flag.code.rawValue)
        return OutboxDraft(id: id, type: type, kind: order.kind, mrn: order.mrn,
                           body: wrap(type, flagData(kind: order.kind, mrn: order.mrn, flag: flag, orderStatus: order.state, ordered: order.amount,
                                                     channelId: order.channelId, knownOrder: order.createdBySidecar, reported: reported), at: now),
                           notifyUrl: order.notifyUrl, createdAt: now, traceParent: order.traceParent)
    }

    /// A `*.flagged` event about a pruned order (only its tombstone is left).
    static func flagged(_ tombstone: Tombstone, flag: OrderFlag, reported: ReportedAmounts, at now: Millis) -> OutboxDraft {
        let type = EventType.flagged(tombstone.kind)
        let id = id(tombstone.kind.rawValue, tombstone.mrn, "tombstone", String(tombstone.prunedAt), "flag", flag.code.rawValue)
        return OutboxDraft(id: id, type: type, kind: tombstone.kind, mrn: tombstone.mrn,
                           body: wrap(type, flagData(kind: tombstone.kind, mrn: tombstone.mrn, flag: flag, orderStatus: tombstone.outcome, ordered: nil,
                                                     channelId: nil, knownOrder: true, reported: reported), at: now),
                           notifyUrl: nil, createdAt: now)
    }

    static func flagData(kind: OrderKind, mrn: String, flag: OrderFlag, orderStatus: OrderState, ordered: String?, channelId: Int?,
                         knownOrder: Bool, reported: ReportedAmounts) -> [JSONValue.JSONMember] {
        var data: [JSONValue.JSONMember] = [
            .init("mrn", .string(mrn)),
            .init("flag", .string(flag.code.rawValue)),
            .init("detail", .string(flag.detail)),
            .init("orderStatus", .string(orderStatus.rawValue)),
            .init("orderAmount", ordered.map(JSONValue.string) ?? .null),
            .init("reportedAmount", reported.amount.map(JSONValue.string) ?? .null),
        ]
        if kind == .deposit {
            data.append(.init("reportedOriginAmount", reported.originAmount.map(JSONValue.string) ?? .null))
            data.append(.init("channelId", channelId.map { .number(String($0)) } ?? .null))
            data.append(.init("reportedChannelId", reported.channelId.map { .number(String($0)) } ?? .null))
        }
        data.append(.init("source", .string(reported.source)))
        data.append(.init("knownOrder", .bool(knownOrder)))
        return data
    }

    static func wrap(_ type: EventType, _ data: [JSONValue.JSONMember], at now: Millis) -> String {
        JSONValue.object(["type": .string(type.rawValue), "timestamp": .string(rfc3339(now)), "data": .object(data)]).jsonText
    }
}

/// What the report that raised a flag said, for the flag's event (all nil for a query or the reconciler).
struct ReportedAmounts: Sendable, Hashable {
    var amount: String?
    var originAmount: String?
    var channelId: Int?
    /// `callback`, `query` or `reconciler`.
    var source: String
}

/// Two amounts in yuan text are the same money (`100` and `100.00`); text that is not an amount is
/// compared as text.
func sameAmount(_ a: String, _ b: String) -> Bool {
    guard let x = minorUnits(a), let y = minorUnits(b) else { return a == b }
    return x == y
}

/// Fen, leniently parsed (the gateway prints amounts in callbacks as it likes: `500`, `500.00`).
func minorUnits(_ text: String) -> Int64? {
    AmountText.parse(text, maxDecimals: 2, strict: false)
}
