import GatewayProtocol
import Orders

/// A page of what a ledger holds, as the plain values it stores, for copying the ledger into another backend
/// (`pay-sidecar migrate-ledger`). Pages come table by table in an order an importer can insert as they come:
/// orders, tombstones, outbox events (oldest first), their delivery attempts, callback receipts, refused callbacks.
public enum LedgerPage: Sendable {
    case orders([Order])
    case tombstones([Tombstone])
    case events([OutboxEvent])
    case attempts([DeliveryAttempt])
    case receipts([CallbackReceipt])
    case rejections([RejectedCallback])
}

/// A ledger that can hand over everything it holds, page by page. Claims are not part of it: a ledger is exported
/// when no process uses it any more.
public protocol LedgerExporting: Sendable {
    /// Calls `sink` with every row, `pageSize` at a time, in the order `LedgerPage` describes.
    func export(pageSize: Int, to sink: (LedgerPage) async throws -> Void) async throws
}

/// What a ledger holds, counted: what a copy moved.
public struct LedgerCounts: Sendable, Hashable {
    public var orders = 0
    /// Orders not final yet (still sending, pending or unknown): the reconciler follows them.
    public var openOrders = 0
    public var tombstones = 0
    public var pendingEvents = 0
    public var failedEvents = 0
    public var deliveredEvents = 0
    public var attempts = 0
    public var receipts = 0
    public var rejections = 0

    public init() {}

    public var events: Int { pendingEvents + failedEvents + deliveredEvents }

    /// Counts `page` in.
    public mutating func add(_ page: LedgerPage) {
        switch page {
        case .orders(let orders):
            self.orders += orders.count
            openOrders += orders.filter { $0.closedAt == nil }.count
        case .tombstones(let tombstones): self.tombstones += tombstones.count
        case .events(let events):
            for event in events {
                switch event.status {
                case .pending: pendingEvents += 1
                case .failed: failedEvents += 1
                case .delivered: deliveredEvents += 1
                }
            }
        case .attempts(let attempts): self.attempts += attempts.count
        case .receipts(let receipts): self.receipts += receipts.count
        case .rejections(let rejections): self.rejections += rejections.count
        }
    }
}
