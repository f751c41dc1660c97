import GatewayProtocol
import Ledger
import Logging
import ServiceLifecycle
import Synchronization

/// Finds out what happened to orders the sidecar has no outcome for: `pending` (no callback yet) and
/// `unknown` (the create may or may not have reached the gateway).
///
/// An order is first queried `PAYSIDECAR_RECONCILE_AFTER` after its create, then after 2, 5 and 15 times
/// that, then every 60 times that (with the default 60s: 1m, 2m, 5m, 15m, then hourly), until
/// `PAYSIDECAR_RECONCILE_HORIZON` after its creation. Queries run one at a time, at most 10 a second.
/// A settled status goes through the same transition as a callback (`Ledger.apply`, source `query`), so an
/// outcome is emitted once whichever arrives first.
///
/// | journal state | gateway says | action |
/// |---|---|---|
/// | any | paid (1) / failed (2) | settle: `*.succeeded` / `*.failed`, source `query` |
/// | unknown | waiting (0) | the create landed: `pending`, keep querying |
/// | unknown payout | object_not_found | re-send the same payout (same mrn): accepted → `pending`; `mrn_duplication` → the first one landed → `pending`; other refusal → `rejected` |
/// | unknown deposit | object_not_found | the create never landed: `rejected` (`not_created`); an identical retry may send it again |
/// | pending | waiting, object_not_found | keep querying (a page-mode customer may not have paid yet) |
/// | any | no answer, other codes | keep querying |
final class Reconciler: Service, Sendable {
    let ledger: any Ledger
    let gateway: GatewayClient
    let configuration: SidecarConfiguration
    let onEmitted: @Sendable () -> Void
    let metrics: SidecarMetrics?
    let logger: Logger
    let lastPrune = Mutex<Millis>(0)

    static let multipliers: [Int64] = [2, 5, 15, 60]
    static let minimumSpacing: Duration = .milliseconds(100)

    init(ledger: any Ledger, gateway: GatewayClient, configuration: SidecarConfiguration, onEmitted: @escaping @Sendable () -> Void,
         metrics: SidecarMetrics? = nil, logger: Logger) {
        self.metrics = metrics
        self.ledger = ledger
        self.gateway = gateway
        self.configuration = configuration
        self.onEmitted = onEmitted
        self.logger = logger
    }

    var tick: Duration { min(.seconds(1), max(.milliseconds(20), configuration.reconcileAfter / 4)) }

    func run() async throws {
        await cancelWhenGracefulShutdown { [self] in
            while !Task.isCancelled {
                do {
                    let due = try await ledger.ordersToReconcile(now: nowMillis(), limit: 20)
                    for order in due {
                        guard !Task.isCancelled else { return }
                        await reconcile(order)
                        try? await Task.sleep(for: Self.minimumSpacing)
                    }
                    try await pruneIfDue()
                } catch {
                    logger.error("reconciler pass failed", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: tick)
            }
        }
    }

    func pruneIfDue() async throws {
        let now = nowMillis()
        let due = lastPrune.withLock { last -> Bool in
            guard now - last >= 3_600_000 else { return false }
            last = now
            return true
        }
        guard due else { return }
        let removed = try await ledger.prune(before: now - milliseconds(configuration.journalRetention))
        if removed > 0 { logger.info("journal pruned", metadata: ["orders": "\(removed)"]) }
    }

    /// When to query next after `queries` queries, or nil past the horizon.
    func nextQuery(_ order: OrderRecord, now: Millis) -> Millis? {
        let step = Self.multipliers[min(order.queryCount, Self.multipliers.count - 1)]
        let next = now + milliseconds(configuration.reconcileAfter) * step
        return next <= order.createdAt + milliseconds(configuration.reconcileHorizon) ? next : nil
    }

    func reconcile(_ order: OrderRecord) async {
        guard let kind = OrderKind(rawValue: order.kind) else { return }
        let now = nowMillis()
        let next = nextQuery(order, now: now)
        let giveUp = next == nil ? "no outcome within PAYSIDECAR_RECONCILE_HORIZON; check with the gateway" : nil
        let call = await gateway.query(OrderQuery(kind: kind, appKey: configuration.appKey, mrn: order.mrn))
        do {
            switch call.result {
            case .failure(let failure):
                metrics?.reconcilerQuery(result: "failed")
                try await ledger.recordQuery(kind: order.kind, mrn: order.mrn, gatewayStatus: nil, state: nil, gatewayCode: nil, nextQueryAt: next, flag: giveUp, at: now)
                logger.info("reconcile query failed", metadata: ["mrn": "\(order.mrn)", "error": "\(failure)"])
            case .success(let answer) where answer.error.isSuccess:
                metrics?.reconcilerQuery(result: answer.status == .paid || answer.status == .failed ? "settled" : "pending")
                switch answer.status {
                case .paid?, .failed?:
                    try await settle(order, kind: kind, succeeded: answer.status == .paid, at: now)
                case .waiting?:
                    try await ledger.recordQuery(kind: order.kind, mrn: order.mrn, gatewayStatus: 0, state: .pending, gatewayCode: nil, nextQueryAt: next, flag: giveUp, at: now)
                default:
                    try await ledger.recordQuery(kind: order.kind, mrn: order.mrn, gatewayStatus: answer.status?.code, state: nil, gatewayCode: nil, nextQueryAt: next, flag: giveUp, at: now)
                }
            case .success(let answer) where answer.error == .objectNotFound && order.state == .unknown:
                metrics?.reconcilerQuery(result: "not_found")
                if kind == .payout {
                    try await resendPayout(order, next: next, at: now)
                } else {
                    try await ledger.recordQuery(kind: order.kind, mrn: order.mrn, gatewayStatus: nil, state: .rejected, gatewayCode: "not_created", nextQueryAt: nil, flag: nil, at: now)
                    logger.notice("unknown deposit never reached the gateway", metadata: ["mrn": "\(order.mrn)"])
                }
            case .success:
                metrics?.reconcilerQuery(result: "pending")
                try await ledger.recordQuery(kind: order.kind, mrn: order.mrn, gatewayStatus: nil, state: nil, gatewayCode: nil, nextQueryAt: next, flag: giveUp, at: now)
            }
        } catch {
            logger.error("could not record a reconcile result", metadata: ["mrn": "\(order.mrn)", "error": "\(error)"])
        }
    }

    func settle(_ order: OrderRecord, kind: OrderKind, succeeded: Bool, at: Millis) async throws {
        let type = "\(kind.rawValue).\(succeeded ? "succeeded" : "failed")"
        let settlement = Settlement(
            kind: order.kind, mrn: order.mrn, succeeded: succeeded, source: "query", eventType: type, paidAmount: nil,
            orderAmount: order.amount, rawBody: nil, sourceAddress: nil, at: at
        ) { journaled in
            switch kind {
            case .deposit:
                return EventBody.deposit(succeeded: succeeded, mrn: order.mrn, paid: nil, origin: nil, channelId: nil, source: "query", order: journaled, at: at)
            case .payout:
                return EventBody.payout(succeeded: succeeded, mrn: order.mrn, amount: nil, source: "query", order: journaled, at: at)
            }
        }
        if case .emitted(let id) = try await ledger.apply(settlement, eventID: EventID.make()) {
            logger.info("order settled by query", metadata: ["mrn": "\(order.mrn)", "type": "\(type)", "event_id": "\(id)"])
            onEmitted()
        }
        try await ledger.recordQuery(kind: order.kind, mrn: order.mrn, gatewayStatus: succeeded ? 1 : 2, state: nil, gatewayCode: nil, nextQueryAt: nil, flag: nil, at: at)
    }

    /// An unknown payout the gateway does not know: send the same one again. The gateway refuses a repeated
    /// mrn, so this cannot pay twice: `mrn_duplication` means the first one landed after all.
    func resendPayout(_ order: OrderRecord, next: Millis?, at: Millis) async throws {
        guard let text = order.request, let input = PayoutInput(normalized: text) else {
            try await ledger.recordQuery(kind: order.kind, mrn: order.mrn, gatewayStatus: nil, state: nil, gatewayCode: nil, nextQueryAt: next,
                                         flag: "cannot rebuild the payout to re-send it", at: at)
            return
        }
        let payout = PayoutRequest(accountName: input.accountName, accountNumber: input.accountNumber, amount: input.amount, appKey: configuration.appKey,
                                   bankName: input.bankName, callbackUrl: configuration.payoutCallbackURL, mrn: input.mrn)
        let call = await gateway.createPayout(payout)
        switch call.result {
        case .success(let answer) where answer.error.isSuccess || answer.error == .mrnDuplication:
            try await ledger.recordQuery(kind: order.kind, mrn: order.mrn, gatewayStatus: nil, state: .pending, gatewayCode: nil,
                                         nextQueryAt: at + milliseconds(configuration.reconcileAfter), flag: nil, at: at)
            logger.notice("unknown payout re-sent", metadata: ["mrn": "\(order.mrn)", "answer": "\(answer.error.rawValue)"])
        case .success(let answer):
            try await ledger.recordQuery(kind: order.kind, mrn: order.mrn, gatewayStatus: nil, state: .rejected, gatewayCode: answer.error.rawValue,
                                         nextQueryAt: nil, flag: nil, at: at)
        case .failure:
            try await ledger.recordQuery(kind: order.kind, mrn: order.mrn, gatewayStatus: nil, state: nil, gatewayCode: nil, nextQueryAt: next, flag: nil, at: at)
        }
    }
}
