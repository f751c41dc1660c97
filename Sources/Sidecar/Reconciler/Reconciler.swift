import GatewayProtocol
import Ledger
import Logging
import Orders
import ServiceLifecycle
import Synchronization
import Tracing

/// Finds out what happened to orders the sidecar has no outcome for, and keeps the journal's size in check.
///
/// It claims the orders whose next query has come (`Ledger.claimDueOrders`: one process at a time per order),
/// asks the order rules what to do with each (`OrderStateMachine.due`: a create whose process died is
/// `unknown` first), queries the gateway, and hands the answer back to the rules (`query`), which settle,
/// flag, schedule the next query, or ask for a payout to be re-sent (`resent`). Queries run one at a time,
/// at most 10 a second. The rules, not this loop, say what each answer means (see `OrderStateMachine`).
///
/// With several replicas each order is queried by one of them at a time: a replica claims a few orders at once
/// (`batchSize`, so that a backlog spreads over the replicas) and starts a query only when it ends, gateway timeout
/// included, before the claim does; what it has no time left for comes due again when the claim ends.
///
/// Hourly (more often with short retentions) it prunes: orders final for PAYSIDECAR_JOURNAL_RETENTION (a settled one leaves a tombstone),
/// tombstones older than PAYSIDECAR_TOMBSTONE_RETENTION, delivered events older than PAYSIDECAR_EVENT_RETENTION.
final class Reconciler: Service, Sendable {
    let ledger: any Ledger
    let desk: OrderDesk
    let gateway: GatewayClient
    let configuration: SidecarConfiguration
    let metrics: SidecarMetrics?
    let logger: Logger
    let lastPrune = Mutex<Millis>(0)

    static let minimumSpacing: Duration = .milliseconds(100)
    /// Orders claimed at a time.
    static let batchSize = 5
    /// Time kept, after a query's timeout, for recording its answer within the claim.
    static let recordingMargin: Millis = 2_000

    /// Hourly, or four times per retention period when a retention is shorter than four hours (never more
    /// often than every second).
    var pruneInterval: Millis {
        let shortest = min(milliseconds(configuration.journalRetention), milliseconds(configuration.eventRetention))
        return max(1000, min(3_600_000, shortest / 4))
    }

    init(ledger: any Ledger, desk: OrderDesk, gateway: GatewayClient, configuration: SidecarConfiguration, metrics: SidecarMetrics? = nil, logger: Logger) {
        self.metrics = metrics
        self.ledger = ledger
        self.desk = desk
        self.gateway = gateway
        self.configuration = configuration
        self.logger = logger
    }

    var tick: Duration { min(.seconds(1), max(.milliseconds(20), configuration.reconcileAfter / 4)) }

    /// How long a claimed order is this process's: a query (or a re-send) and its recording fit well within.
    var claimLease: Millis { desk.policy.sendDeadline }

    func run() async throws {
        await cancelWhenGracefulShutdown { [self] in
            while !Task.isCancelled {
                var more = false
                do {
                    let due = try await ledger.claimDueOrders(now: nowMillis(), lease: claimLease, limit: Self.batchSize)
                    more = due.count == Self.batchSize
                    for order in due {
                        guard !Task.isCancelled else { return }
                        guard startsWithinClaim(order) else {
                            more = false
                            break
                        }
                        await reconcile(order)
                        try? await Task.sleep(for: Self.minimumSpacing)
                    }
                    try await pruneIfDue()
                } catch {
                    logger.error("reconciler pass failed", metadata: ["error": "\(error)"])
                }
                // A full batch: there may be more due now.
                if !more { try? await Task.sleep(for: tick) }
            }
        }
    }

    /// Whether a query of `claimed`, started now, ends within its claim (`nextQueryAt` holds the claim's end): the
    /// gateway call is bounded by PAYSIDECAR_GATEWAY_TIMEOUT, its recording by `recordingMargin`. After a slow
    /// gateway has used up the claim, another replica may claim the order; this one leaves it.
    func startsWithinClaim(_ claimed: Order) -> Bool {
        nowMillis() + milliseconds(configuration.gatewayTimeout) + Self.recordingMargin <= (claimed.nextQueryAt ?? 0)
    }


    /// One due order, as a span of its own (no request is behind it): its journal commits and its gateway query
    /// (or re-send) are the span's children.
    func reconcile(_ claimed: Order) async {
        await withSpan("reconcile \(claimed.kind.rawValue)") { span in
            span.attributes["paysidecar.order.kind"] = claimed.kind.rawValue
            span.attributes["paysidecar.order.mrn"] = claimed.mrn
            await reconcileUntraced(claimed)
        }
    }

    private func reconcileUntraced(_ claimed: Order) async {
        let kind = claimed.kind
        let mrn = claimed.mrn
        do {
            var (decision, journaled) = try await desk.decide(kind, mrn, known: .order(claimed)) { $0.due(at: nowMillis()) }
            guard decision.action == .query else { return }
            let call = await gateway.query(OrderQuery(kind: kind, appKey: configuration.appKey, mrn: mrn))
            let report = QueryReport(call.result)
            metrics?.reconcilerQuery(result: Self.label(report))
            (decision, journaled) = try await desk.decide(kind, mrn, known: journaled) { $0.query(report, origin: .reconciler, at: nowMillis()) }
            logger.info("reconcile query", metadata: ["mrn": "\(mrn)", "kind": "\(kind.rawValue)", "answer": "\(report)", "outcome": "\(decision.outcome.rawValue)"])
            if case .resend(let request) = decision.action {
                let sent = await resend(request)
                _ = try await desk.decide(kind, mrn, known: journaled) { $0.resent(sent, at: nowMillis()) }
                logger.notice("unknown payout re-sent", metadata: ["mrn": "\(mrn)", "answer": "\(sent)"])
            }
        } catch {
            logger.error("could not record a reconcile result", metadata: ["mrn": "\(mrn)", "error": "\(error)"])
        }
    }

    static func label(_ report: QueryReport) -> String {
        switch report {
        case .status(.paid), .status(.failed): return "settled"
        case .status: return "pending"
        case .notFound: return "not_found"
        case .refused, .noAnswer: return "failed"
        }
    }

    /// Sends an unknown payout again with its normalized request (same mrn), when the order rules allow it.
    func resend(_ request: String) async -> CreateReport {
        guard let input = PayoutInput(normalized: request) else { return .failed(requestSent: false, code: "unreadable_request") }
        let payout = PayoutRequest(accountName: input.accountName, accountNumber: input.accountNumber, amount: input.amount, appKey: configuration.appKey,
                                   bankName: input.bankName, callbackUrl: configuration.payoutCallbackURL, mrn: input.mrn)
        let call = await gateway.createPayout(payout)
        switch call.result {
        case .success(let answer) where answer.error.isSuccess: return .accepted
        case .success(let answer): return .refused(code: answer.error.rawValue)
        case .failure(let failure): return .failed(requestSent: failure.requestSent, code: Problem.gateway(failure, isCreate: true).code)
        }
    }

    func pruneIfDue() async throws {
        let now = nowMillis()
        let due = lastPrune.withLock { last -> Bool in
            guard now - last >= pruneInterval else { return false }
            last = now
            return true
        }
        guard due else { return }
        try await prune(now: now)
    }

    /// One pruning pass: each final order through the rules (which leave tombstones), then old tombstones and
    /// delivered events.
    func prune(now: Millis) async throws {
        let cutoff = now - milliseconds(configuration.journalRetention)
        var pruned = 0
        while true {
            let batch = try await ledger.closedOrders(before: cutoff, limit: 500)
            if batch.isEmpty { break }
            // One span per batch, so that its commits have a parent rather than each starting a trace.
            let prunedNow = try await withSpan("journal prune") { span in
                var count = 0
                for order in batch {
                    let decision = try await desk.decide(order.kind, order.mrn, known: .order(order)) { $0.prune(closedBefore: cutoff, at: now) }.decision
                    if decision.outcome == .pruned { count += 1 }
                }
                span.attributes["paysidecar.journal.pruned"] = count
                return count
            }
            pruned += prunedNow
            if batch.count < 500 || prunedNow == 0 { break }
        }
        let tombstones = try await ledger.pruneTombstones(before: now - milliseconds(configuration.tombstoneRetention))
        let events = try await ledger.pruneDeliveredEvents(before: now - milliseconds(configuration.eventRetention))
        if pruned + tombstones + events > 0 {
            logger.info("journal pruned", metadata: ["orders": "\(pruned)", "tombstones": "\(tombstones)", "delivered_events": "\(events)"])
        }
    }
}
