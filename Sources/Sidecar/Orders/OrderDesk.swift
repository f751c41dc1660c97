import GatewayProtocol
import Ledger
import Logging
import Orders
import Tracing

/// Runs the order rules against the journal: reads what is journaled, asks `OrderStateMachine` for a
/// decision, commits its write in one transaction, and, when another writer changed the order meanwhile,
/// decides again from what the journal holds now.
///
/// The routes, the reconciler and pruning all go through here; none of them changes an order any other way.
struct OrderDesk: Sendable {
    let ledger: any Ledger
    let policy: OrderPolicy
    /// Called after a commit that queued events (wakes the webhook dispatcher).
    let onEmitted: @Sendable () -> Void
    let metrics: SidecarMetrics?
    let logger: Logger

    /// How many times a decision is taken again after version conflicts before giving up (each conflict
    /// means another writer made progress on the same order).
    static let maxAttempts = 8

    /// Decides on (kind, mrn) with `input`, starting from `known` when the caller already holds the journal's
    /// value (a create tries its insert without reading first), and commits the decision. Returns it with what
    /// the journal holds afterwards.
    func decide(_ kind: OrderKind, _ mrn: String, known: Journaled? = nil,
                _ input: (inout OrderStateMachine) -> Decision) async throws -> (decision: Decision, journaled: Journaled) {
        var current = known
        for _ in 0..<Self.maxAttempts {
            let journaled: Journaled
            if let current { journaled = current } else { journaled = try await ledger.journaled(kind, mrn) }
            var machine = OrderStateMachine(journaled, policy: policy)
            let decision = input(&machine)
            guard let write = decision.write else { return (decision, machine.journaled) }
            switch try await commit(write, kind: kind, mrn: mrn) {
            case .committed:
                report(decision, kind: kind, mrn: mrn)
                return (decision, machine.journaled)
            case .conflict(let now):
                current = now
            }
        }
        throw LedgerError("the \(kind.rawValue) \(mrn) kept changing while a decision was taken; try again")
    }

    /// One journal transaction, as a span of its own (a child of the request, callback or reconciler pass that
    /// decided it): which order, what it became, how many events it queued, whether it had to reach the disk.
    private func commit(_ write: JournalWrite, kind: OrderKind, mrn: String) async throws -> CommitResult {
        try await withSpan("journal commit") { span in
            span.attributes["paysidecar.order.kind"] = kind.rawValue
            span.attributes["paysidecar.order.mrn"] = mrn
            span.attributes["paysidecar.journal.durable"] = write.durable
            span.attributes["paysidecar.journal.events"] = write.events.count
            switch write.order {
            case .insert(let order)?, .update(let order, _)?: span.attributes["paysidecar.order.state"] = order.state.rawValue
            case .delete?: span.attributes["paysidecar.order.state"] = "pruned"
            case nil: break
            }
            let result = try await ledger.commit(write)
            span.attributes["paysidecar.journal.result"] = result == .committed ? "committed" : "conflict"
            return result
        }
    }

    private func report(_ decision: Decision, kind: OrderKind, mrn: String) {
        for flag in decision.raised {
            metrics?.orderFlagged(kind: kind, flag: flag.code)
            logger.warning("order flagged", metadata: ["kind": "\(kind.rawValue)", "mrn": "\(mrn)", "flag": "\(flag.code.rawValue)", "detail": "\(flag.detail)"])
        }
        if !decision.events.isEmpty { onEmitted() }
    }
}

extension OrderPolicy {
    /// The rules' settings from the sidecar's configuration.
    init(_ configuration: SidecarConfiguration) {
        self.init(
            reconcileAfter: milliseconds(configuration.reconcileAfter),
            horizon: milliseconds(configuration.reconcileHorizon),
            resendAfter: milliseconds(configuration.resendAfter),
            sendDeadline: milliseconds(configuration.gatewayTimeout) + 30_000,
            acceptUnknownOrderCallbacks: configuration.acceptUnknownOrderCallbacks
        )
    }
}

extension QueryReport {
    /// A gateway query's result in the order rules' terms.
    init(_ result: Result<QueryAnswer, GatewayCallFailure>) {
        switch result {
        case .failure:
            self = .noAnswer
        case .success(let answer) where answer.error.isSuccess:
            self = answer.status.map(QueryReport.status) ?? .noAnswer
        case .success(let answer) where answer.error == .objectNotFound:
            self = .notFound
        case .success(let answer):
            self = .refused(code: answer.error.rawValue)
        }
    }
}
