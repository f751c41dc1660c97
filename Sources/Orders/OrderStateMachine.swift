import GatewayProtocol

/// What the code around the rules does after a decision (once its write, if any, is committed).
public enum OrderAction: Sendable, Hashable {
    case none
    /// Send the create to the gateway now, then report what came of it with `createSent`.
    case send
    /// Send the payout again with the same mrn (its normalized request), then report with `resent`.
    case resend(request: String)
    /// Ask the gateway about the order, then report with `query`.
    case query
    /// Answer a retried create with the answer the first call got, byte for byte.
    case replay(RecordedAnswer)
    /// Answer a retried create with what is known now: its first answer said "unknown", or the order was
    /// pruned (only its tombstone is left).
    case report(OrderState)
    /// The mrn is journaled for another request; nothing is sent.
    case conflict(detail: String)
    /// The first create with this mrn is still on its way.
    case inProgress
    /// A create whose process died while sending it: the order may exist and is being queried.
    case outcomeUnknown
    /// Answer the create just sent as its verdict says.
    case respond(CreateVerdict)
    /// Answer the gateway's callback `success`.
    case acknowledge
    /// Refuse the callback (4xx with this reason).
    case refuse(reason: String, detail: String)
}

/// What a decision came to, for logs and metrics.
public enum DecisionOutcome: String, Sendable, Hashable {
    /// A new order was journaled (or a failed one taken up again).
    case created
    /// A create was answered from the journal.
    case answered
    /// The order's outcome became known: succeeded or failed.
    case settled
    /// A callback brought the amount of an order settled by query.
    case confirmed
    /// Nothing new.
    case duplicate
    /// A flag was raised and nothing was settled.
    case flagged
    /// Something else was recorded (a state on the way, a schedule).
    case recorded
    /// The input was refused.
    case refused
    /// The order was deleted from the journal.
    case pruned
}

/// One decision: what to persist, in one transaction, and what to do next.
public struct Decision: Sendable, Hashable {
    /// What the journal must hold afterwards; nil when nothing changes.
    public var write: JournalWrite?
    public var action: OrderAction
    /// Flags raised by this decision (each has its `*.flagged` event in `write.events`).
    public var raised: [OrderFlag]
    public var outcome: DecisionOutcome

    public init(write: JournalWrite? = nil, action: OrderAction = .none, raised: [OrderFlag] = [], outcome: DecisionOutcome) {
        self.write = write
        self.action = action
        self.raised = raised
        self.outcome = outcome
    }

    /// The events this decision queues.
    public var events: [OutboxDraft] { write?.events ?? [] }
}

/// The one owner of an order's lifecycle: every transition (create, its outcome, callbacks, queries, the
/// reconciler's schedule, re-sends, pruning) is decided here, and nowhere else.
///
/// Pure: no I/O, no clock (`now` is given), no randomness. It holds what the journal knows about one
/// (kind, mrn) and returns, for each input, the write that records the change (with its version check),
/// the events to emit and the action to take. The caller commits the write; if the journal changed
/// meanwhile (a version conflict), it reads the order again and asks again.
///
/// The rules, by input:
///
/// | input | order | decision |
/// |---|---|---|
/// | create | none | journal it `sending`, send |
/// | create | same request | replay the first answer; if that said unknown and more is known now, say that; `inProgress` while sending; if its process died while sending: `outcomeUnknown` until the queries know more, then that |
/// | create | `rejected` because it was never sent (`not_sent`, `not_created`) | take it up again: `sending`, send |
/// | create | another request, or a callback-only order | `conflict`, nothing sent |
/// | create | tombstone | same request: report its outcome; else `conflict` |
/// | create sent | accepted (or page form issued) | `pending`, query after PAYSIDECAR_RECONCILE_AFTER |
/// | create sent | refused with a documented code | `rejected` with the code |
/// | create sent | `mrn_duplication`, an undocumented code, timeout, lost after sending, 5xx, garbage | `unknown`, queried; never sent blindly |
/// | create sent | not sent at all | `rejected` (`not_sent`): a retry may send it |
/// | callback | none | PAYSIDECAR_UNKNOWN_ORDER_CALLBACKS: `accept` stores it `succeeded`, flagged `unknown_order` (a `*.flagged` event only, never a settlement); `reject` refuses it |
/// | callback | unsettled | `succeeded` (source callback, amount paid); amounts and channel checked: each difference is a flag |
/// | callback | `rejected` | `succeeded`, flagged `contradicting_outcome` |
/// | callback | `succeeded` by query | fills `paidAmount`; a difference from the order is `amount_mismatch` |
/// | callback | `succeeded` by callback | same amount: duplicate; another amount: `amount_mismatch` |
/// | callback | `failed` | stays `failed`, flagged `contradicting_outcome` |
/// | callback | tombstone | `succeeded`: a replay, nothing new; `failed`: flagged `contradicting_outcome` |
/// | query paid / failed | `pending`, `unknown` | settled (source query, amount null until a callback says) |
/// | query paid | `rejected` | `succeeded`, flagged `contradicting_outcome` |
/// | query paid / failed | settled the other way | flagged `contradicting_outcome`, outcome kept |
/// | query waiting | `unknown` | the create landed: `pending` |
/// | query waiting | `rejected` | reopened `pending`; flagged `contradicting_outcome` if a documented code refused it |
/// | query not found | `unknown` deposit | once such answers span PAYSIDECAR_RESEND_AFTER since the first send: `rejected` (`not_created`), a retry may send it; before that (the gateway may still be processing it), and ever after `mrn_duplication`, it stays `unknown` |
/// | query not found | `unknown` payout | re-sent once, same mrn, only when such answers span PAYSIDECAR_RESEND_AFTER since the first send and within the horizon; never after `mrn_duplication` (flagged `duplicate_mrn_not_found`) or a second time (`resend_unresolved`) |
/// | re-sent | accepted or `mrn_duplication` | `pending` |
/// | re-sent | another refusal | stays `unknown`, flagged `resend_refused` |
/// | reconciler's query, still unsettled | | next query after 2, 5, 15, then 60 × PAYSIDECAR_RECONCILE_AFTER; past PAYSIDECAR_RECONCILE_HORIZON: stop, flagged `past_horizon` (a later outcome adds `settled_after_horizon`) |
/// | due while sending | | its process died: `unknown` (`interrupted`), query |
/// | prune | settled or refused before the cutoff | deleted; a settled one leaves a tombstone |
public struct OrderStateMachine: Sendable {
    public let policy: OrderPolicy
    /// What the journal holds after the last decision.
    public private(set) var journaled: Journaled

    public init(_ journaled: Journaled, policy: OrderPolicy) {
        self.journaled = journaled
        self.policy = policy
    }

    // MARK: Creates

    /// A caller asks to create an order (or retries).
    public mutating func create(_ request: CreateRequest, at now: Millis) -> Decision {
        switch journaled {
        case .nothing:
            var order = Order(kind: request.kind, mrn: request.mrn, amount: request.amount, channelId: request.channelId, notifyUrl: request.notifyUrl,
                              state: .sending, request: request.request, fingerprint: request.fingerprint, createdAt: now, traceParent: request.traceParent)
            order.sendingSince = now
            order.nextQueryAt = now + policy.sendDeadline
            return save(order, from: nil, at: now, action: .send, outcome: .created)

        case .tombstone(let tombstone):
            guard tombstone.fingerprint == request.fingerprint else {
                return Decision(action: .conflict(detail: "mrn \(request.mrn) was used by another \(request.kind.rawValue), since settled"), outcome: .refused)
            }
            return Decision(action: .report(tombstone.outcome), outcome: .answered)

        case .order(var order):
            guard order.createdBySidecar, order.fingerprint == request.fingerprint else {
                let why = order.createdBySidecar ? "with a different request" : "by the gateway's callback for an order this sidecar never created"
                return Decision(action: .conflict(detail: "mrn \(request.mrn) is already journaled \(why); nothing was sent"), outcome: .refused)
            }
            if order.state == .rejected, order.gatewayCode == Self.notSent || order.gatewayCode == Self.notCreated {
                // It never reached the gateway (or the gateway never got it): the retry may send it.
                order.state = .sending
                order.answer = nil
                order.verdict = nil
                order.gatewayCode = nil
                order.closedAt = nil
                order.sendingSince = now
                order.nextQueryAt = now + policy.sendDeadline
                // The retry is the create that reaches the gateway: its trace is the one the webhooks continue.
                order.traceParent = request.traceParent ?? order.traceParent
                return save(order, from: journaledOrder, at: now, action: .send, outcome: .created)
            }
            var decision = Decision(outcome: .answered)
            if let since = order.sendingSince {
                guard now - since > policy.sendDeadline else { return Decision(action: .inProgress, outcome: .answered) }
                // Long past any gateway timeout: the process that was sending it is gone.
                let before = order
                interrupt(&order, at: now)
                decision = save(order, from: before, at: now, action: .none, outcome: .answered)
            }
            if let answer = order.answer {
                decision.action = order.verdict == .unknown && order.state != .unknown ? .report(order.state) : .replay(answer)
            } else {
                // Its process died before recording an answer: "unknown" until the queries know more.
                decision.action = order.state == .unknown || order.state == .sending ? .outcomeUnknown : .report(order.state)
            }
            return decision
        }
    }

    /// What a create's answer means for the order. Public so the caller can word its answer before the
    /// decision is recorded (the answer is part of it).
    public static func verdict(for report: CreateReport) -> CreateVerdict {
        switch report {
        case .formIssued, .accepted:
            return .accepted
        case .refused(let code):
            let result = GatewayResultCode(rawValue: code)
            // The mrn is in use at the gateway: one of our earlier sends may have landed (a lost journal,
            // another replica, a power loss). It may exist; it is never sent again.
            if result == .mrnDuplication { return .unknown }
            return GatewayResultCode.documentedErrors.contains(result) ? .rejected : .unknown
        case .failed(let requestSent, _):
            return requestSent ? .unknown : .notSent
        }
    }

    /// The create was sent (or handed out as a form): record its outcome and the answer given.
    public mutating func createSent(_ report: CreateReport, answer: RecordedAnswer, at now: Millis) -> Decision {
        guard case .order(var order) = journaled else { return Decision(outcome: .duplicate) }
        let before = order
        let verdict = Self.verdict(for: report)
        order.answer = answer
        order.verdict = verdict
        recordSend(&order, report, at: now)
        // A callback (or a query) may have been faster than the answer: an outcome already known stays, and a
        // state the gateway confirmed does not go back to "unknown".
        if order.state == .sending || order.state == .unknown {
            switch verdict {
            case .accepted:
                order.state = .pending
                order.nextQueryAt = now + policy.reconcileAfter
            case .rejected:
                order.state = .rejected
                order.gatewayCode = Self.code(of: report)
                close(&order, at: now)
            case .notSent where order.state == .sending:
                order.state = .rejected
                order.gatewayCode = Self.notSent
                close(&order, at: now)
            case .notSent:
                // Already `unknown` (its send was taken for interrupted): an earlier send may have landed; stay
                // unknown and let the queries find out.
                order.nextQueryAt = order.nextQueryAt ?? now + policy.reconcileAfter
            case .unknown:
                order.state = .unknown
                order.gatewayCode = Self.code(of: report)
                order.nextQueryAt = now + policy.reconcileAfter
            }
        } else if !order.state.isSettled {
            order.nextQueryAt = order.nextQueryAt ?? now + policy.reconcileAfter
        }
        return save(order, from: before, at: now, action: .respond(verdict), outcome: .recorded)
    }

    /// A payout re-sent by the reconciler came to `report`.
    public mutating func resent(_ report: CreateReport, at now: Millis) -> Decision {
        guard case .order(var order) = journaled else { return Decision(outcome: .duplicate) }
        let before = order
        recordSend(&order, report, at: now)
        // Followed like a new create: the query schedule starts over.
        order.queryCount = 0
        var raised: [OrderFlag] = []
        if order.state == .unknown {
            switch report {
            case .accepted, .formIssued:
                order.state = .pending
                order.notFoundSince = nil
            case .refused(let code) where GatewayResultCode(rawValue: code) == .mrnDuplication:
                // The gateway has the mrn after all: the first send landed. Queries confirm it.
                order.state = .pending
                order.notFoundSince = nil
            case .refused(let code):
                raise(.resendRefused, "re-sent after the gateway's queries did not find it since \(describe(order.firstSentAt)); refused with \(code)",
                      on: &order, into: &raised, at: now)
            case .failed:
                break
            }
            order.nextQueryAt = now + policy.reconcileAfter
        }
        var decision = save(order, from: before, at: now, action: .none, outcome: raised.isEmpty ? .recorded : .flagged)
        decision.raised = raised
        decision.write?.events = flaggedEvents(order, raised, reported: ReportedAmounts(source: "reconciler"), at: now)
        return decision
    }

    // MARK: Callbacks

    /// A validly signed callback says the order was paid (deposit) or paid out (payout). Every outcome but
    /// a refusal is answered `success`, after the write is committed (durably).
    public mutating func callback(_ report: CallbackReport, at now: Millis) -> Decision {
        let reported = ReportedAmounts(amount: report.amount, originAmount: report.originAmount, channelId: report.channelId, source: SettlementSource.callback.rawValue)
        switch journaled {
        case .nothing:
            guard policy.acceptUnknownOrderCallbacks else {
                return Decision(action: .refuse(reason: FlagCode.unknownOrder.rawValue, detail: "no order with this mrn was created by this sidecar"), outcome: .refused)
            }
            var order = Order(kind: report.kind, mrn: report.mrn, amount: report.originAmount ?? report.amount, channelId: report.channelId,
                              state: .succeeded, createdBySidecar: false, createdAt: now)
            order.paidAmount = report.amount
            order.settledSource = .callback
            order.settledAt = now
            order.closedAt = now
            var raised: [OrderFlag] = []
            raise(.unknownOrder, "a validly signed callback reports \(report.amount) paid for an mrn this sidecar never created", on: &order, into: &raised, at: now)
            // Stored and told, never emitted as a settlement: nobody here ordered it.
            var decision = save(order, from: nil, at: now, action: .acknowledge, outcome: .flagged)
            decision.raised = raised
            decision.write?.events = flaggedEvents(order, raised, reported: reported, at: now)
            decision.write?.receipt = receipt(report, duplicate: false, at: now)
            decision.write?.durable = true
            return decision

        case .tombstone(var tombstone):
            guard tombstone.outcome == .failed, tombstone.flag != .contradictingOutcome else {
                return Decision(action: .acknowledge, outcome: .duplicate)  // a replay of a settled, pruned order
            }
            let flag = OrderFlag(code: .contradictingOutcome, detail: "a callback reports it paid; it was settled failed (and since pruned)", at: now)
            tombstone.flag = flag.code
            journaled = .tombstone(tombstone)
            let write = JournalWrite(tombstone: tombstone, events: [EventFactory.flagged(tombstone, flag: flag, reported: reported, at: now)],
                                     durable: true)
            return Decision(write: write, action: .acknowledge, raised: [flag], outcome: .flagged)

        case .order(var order):
            let before = order
            var raised: [OrderFlag] = []
            var settled = false
            let outcome: DecisionOutcome
            switch order.state {
            case .sending, .pending, .unknown, .rejected:
                if order.state == .rejected {
                    raise(.contradictingOutcome, "refused at create (\(order.gatewayCode ?? "-")), yet a callback reports it paid", on: &order, into: &raised, at: now)
                }
                callbackDifferences(order, report, on: &order, into: &raised, at: now)
                settle(&order, succeeded: true, source: .callback, paid: report.amount, raised: &raised, at: now)
                settled = true
                outcome = .settled
            case .succeeded:
                if let paid = order.paidAmount {
                    callbackDifferences(order, report, on: &order, into: &raised, at: now)
                    if !sameAmount(report.amount, paid), !raised.contains(where: { $0.code == .amountMismatch || $0.code == .zeroAmount }) {
                        raise(.amountMismatch, "a later callback reports \(report.amount) paid; an earlier one reported \(paid)", on: &order, into: &raised, at: now)
                    }
                    outcome = raised.isEmpty ? .duplicate : .flagged
                } else {
                    // Settled by a query, which carries no amount: the callback says what was paid.
                    order.paidAmount = report.amount
                    callbackDifferences(order, report, on: &order, into: &raised, at: now)
                    outcome = raised.isEmpty ? .confirmed : .flagged
                }
            case .failed:
                raise(.contradictingOutcome, "a callback reports it paid (\(report.amount)); it was settled failed by \(order.settledSource?.rawValue ?? "-")",
                      on: &order, into: &raised, at: now)
                outcome = .flagged
            }
            var decision = order == before
                ? Decision(write: JournalWrite(), action: .acknowledge, outcome: outcome)
                : save(order, from: before, at: now, action: .acknowledge, outcome: outcome)
            decision.raised = raised
            decision.write?.events = (settled ? [EventFactory.settlement(order, at: now)] : []) + flaggedEvents(order, raised, reported: reported, at: now)
            decision.write?.receipt = receipt(report, duplicate: !settled, at: now)
            decision.write?.durable = true
            return decision
        }
    }

    /// Each difference between what a callback reports and the order (amounts, channel), as flags.
    private func callbackDifferences(_ order: Order, _ report: CallbackReport, on target: inout Order, into raised: inout [OrderFlag], at now: Millis) {
        switch report.kind {
        case .payout:
            if !sameAmount(report.amount, order.amount) {
                raise(.amountMismatch, "the callback reports \(report.amount) paid out for a payout of \(order.amount)", on: &target, into: &raised, at: now)
            }
        case .deposit:
            var differences: [String] = []
            if let origin = report.originAmount, !sameAmount(origin, order.amount) {
                differences.append("originAmount \(origin) differs from the ordered \(order.amount)")
            }
            if minorUnits(report.amount) == 0 {
                raise(.zeroAmount, "the callback reports 0 paid (\(report.amount)) for an order of \(order.amount)", on: &target, into: &raised, at: now)
            } else if !sameAmount(report.amount, order.amount) {
                differences.append("\(report.amount) paid for an order of \(order.amount)")
            }
            if !differences.isEmpty {
                raise(.amountMismatch, differences.joined(separator: "; "), on: &target, into: &raised, at: now)
            }
            if let channel = report.channelId, let ordered = order.channelId, channel != ordered {
                raise(.channelMismatch, "the callback names channel \(channel); the order was for channel \(ordered)", on: &target, into: &raised, at: now)
            }
        }
    }

    // MARK: Queries and the reconciler

    /// The reconciler found the order due.
    public mutating func due(at now: Millis) -> Decision {
        guard case .order(var order) = journaled else { return Decision(outcome: .duplicate) }
        let before = order
        if order.sendingSince != nil {
            // Due while a create (or re-send) was on its way: the process sending it died.
            interrupt(&order, at: now)
            let open = order.state == .unknown || order.state == .pending
            // Not before the claim that made it due ends (`nextQueryAt` holds its end): the query about to be made is
            // the claimant's, and another replica must not claim the order while it runs.
            order.nextQueryAt = open ? max(now + policy.reconcileAfter, order.nextQueryAt ?? 0) : nil
            return save(order, from: before, at: now, action: open ? .query : .none, outcome: .recorded)
        }
        guard order.state == .pending || order.state == .unknown else {
            order.nextQueryAt = nil
            return save(order, from: before, at: now, action: .none, outcome: .recorded)
        }
        return Decision(action: .query, outcome: .duplicate)
    }

    /// The gateway's query answered `report`.
    public mutating func query(_ report: QueryReport, origin: QueryOrigin, at now: Millis) -> Decision {
        guard case .order(var order) = journaled, order.sendingSince == nil else { return Decision(outcome: .duplicate) }
        let before = order
        var raised: [OrderFlag] = []
        var settled = false
        var action = OrderAction.none
        switch report {
        case .status(let status) where status == .paid || status == .failed:
            let succeeded = status == .paid
            switch order.state {
            case .pending, .unknown, .sending:
                settle(&order, succeeded: succeeded, source: .query, paid: nil, raised: &raised, at: now)
                settled = true
            case .rejected:
                if succeeded {
                    raise(.contradictingOutcome, "refused at create (\(order.gatewayCode ?? "-")), yet the gateway's query reports it paid", on: &order, into: &raised, at: now)
                    settle(&order, succeeded: true, source: .query, paid: nil, raised: &raised, at: now)
                    settled = true
                }
            case .succeeded, .failed:
                if order.state != (succeeded ? .succeeded : .failed) {
                    raise(.contradictingOutcome, "the gateway's query reports it \(succeeded ? "paid" : "failed"); it was settled \(order.state.rawValue) by \(order.settledSource?.rawValue ?? "-")",
                          on: &order, into: &raised, at: now)
                }
            }
        case .status(.waiting):
            switch order.state {
            case .unknown:
                order.state = .pending  // the create landed
                order.notFoundSince = nil
            case .pending:
                order.notFoundSince = nil
            case .rejected:
                if order.verdict == .rejected {
                    raise(.contradictingOutcome, "refused at create (\(order.gatewayCode ?? "-")), yet the gateway's query knows it (waiting)", on: &order, into: &raised, at: now)
                }
                order.state = .pending
                order.closedAt = nil
                order.notFoundSince = nil
            default:
                break
            }
        case .notFound where order.state == .unknown && origin == .reconciler:
            order.notFoundSince = order.notFoundSince ?? now
            switch order.kind {
            case .deposit:
                // Not yet known is not never created: a gateway still processing the first send answers the same.
                // Only once such answers span PAYSIDECAR_RESEND_AFTER does the deposit count as never created, and a
                // retry of the same request may send it again.
                if order.gatewayCode == GatewayResultCode.mrnDuplication.rawValue {
                    raise(.duplicateMrnNotFound, "the gateway called the mrn a duplicate at create, yet its queries do not find the deposit; it is never sent again",
                          on: &order, into: &raised, at: now)
                } else if notFoundLongEnough(order, at: now) {
                    order.state = .rejected
                    order.gatewayCode = Self.notCreated
                    close(&order, at: now)
                }
            case .payout:
                action = resendDecision(&order, into: &raised, at: now)
            }
        default:
            break
        }
        if origin == .reconciler {
            order.queryCount += 1
            if case .status(let status) = report { order.lastGatewayStatus = status.code }
            if case .resend = action {
                order.sendingSince = now
                order.nextQueryAt = now + policy.sendDeadline
            } else if order.state == .pending || order.state == .unknown {
                let step = Self.backoff(afterQueries: order.queryCount)
                let next = now + policy.reconcileAfter * step
                if next > order.createdAt + policy.horizon {
                    order.nextQueryAt = nil
                    raise(.pastHorizon, "no outcome within the reconcile horizon after \(order.queryCount) queries; check with the gateway",
                          on: &order, into: &raised, at: now)
                } else {
                    order.nextQueryAt = next
                }
            } else {
                order.nextQueryAt = nil
            }
        }
        let outcome: DecisionOutcome = settled ? .settled : (raised.isEmpty ? (order == before ? .duplicate : .recorded) : .flagged)
        var decision = order == before ? Decision(action: action, outcome: outcome) : save(order, from: before, at: now, action: action, outcome: outcome)
        decision.raised = raised
        decision.write?.events = (settled ? [EventFactory.settlement(order, at: now)] : [])
            + flaggedEvents(order, raised, reported: ReportedAmounts(source: origin == .reconciler ? "reconciler" : SettlementSource.query.rawValue), at: now)
        return decision
    }

    /// Whether an unknown payout the gateway does not know may be sent again now.
    private func resendDecision(_ order: inout Order, into raised: inout [OrderFlag], at now: Millis) -> OrderAction {
        if order.gatewayCode == GatewayResultCode.mrnDuplication.rawValue {
            raise(.duplicateMrnNotFound, "the gateway called the mrn a duplicate at create, yet its queries do not find the payout; it is never sent again",
                  on: &order, into: &raised, at: now)
            return .none
        }
        if order.sendCount >= 2 {
            raise(.resendUnresolved, "re-sent once already and still not found by the gateway's queries; not sent again", on: &order, into: &raised, at: now)
            return .none
        }
        guard notFoundLongEnough(order, at: now), now <= order.createdAt + policy.horizon, let request = order.request else { return .none }
        return .resend(request: request)
    }

    /// Whether every query since the first send has answered `object_not_found`, over PAYSIDECAR_RESEND_AFTER at
    /// least: long enough that a gateway still processing that send would know it by now.
    private func notFoundLongEnough(_ order: Order, at now: Millis) -> Bool {
        let firstSent = order.firstSentAt ?? order.createdAt
        guard let since = order.notFoundSince, since >= firstSent else { return false }
        return now - firstSent >= policy.resendAfter
    }

    /// The reconciler's query schedule: after `queries` queries, the next one follows by this many times
    /// PAYSIDECAR_RECONCILE_AFTER.
    static func backoff(afterQueries queries: Int) -> Int64 {
        OrderPolicy.backoff[min(max(queries - 1, 0), OrderPolicy.backoff.count - 1)]
    }

    // MARK: Pruning

    /// Deletes the order if it became final before `cutoff`; a settled order leaves a tombstone.
    public mutating func prune(closedBefore cutoff: Millis, at now: Millis) -> Decision {
        guard case .order(let order) = journaled, let closed = order.closedAt, closed < cutoff, order.sendingSince == nil,
              order.state.isSettled || order.state == .rejected else { return Decision(outcome: .duplicate) }
        var tombstone: Tombstone?
        if order.state.isSettled {
            tombstone = Tombstone(kind: order.kind, mrn: order.mrn, outcome: order.state, settlementEventID: order.settlementEventID,
                                  fingerprint: order.fingerprint, flag: order.flag?.code, prunedAt: now)
        }
        journaled = tombstone.map(Journaled.tombstone) ?? .nothing
        return Decision(write: JournalWrite(order: .delete(kind: order.kind, mrn: order.mrn, expectedVersion: order.version), tombstone: tombstone),
                        outcome: .pruned)
    }

    // MARK: Helpers

    static let notSent = "not_sent"
    static let notCreated = "not_created"
    static let interrupted = "interrupted"

    private var journaledOrder: Order? {
        if case .order(let order) = journaled { return order }
        return nil
    }

    static func code(of report: CreateReport) -> String? {
        switch report {
        case .formIssued, .accepted: return nil
        case .refused(let code): return code
        case .failed(_, let code): return code
        }
    }

    /// A send that may have reached the gateway counts (accepted, refused, or lost after sending).
    private func recordSend(_ order: inout Order, _ report: CreateReport, at now: Millis) {
        let started = order.sendingSince ?? now
        order.sendingSince = nil
        switch report {
        case .formIssued, .failed(requestSent: false, _):
            break
        case .accepted, .refused, .failed(requestSent: true, _):
            order.sendCount += 1
            order.firstSentAt = order.firstSentAt ?? started
        }
    }

    /// The process sending the order died: it may have reached the gateway.
    private func interrupt(_ order: inout Order, at now: Millis) {
        order.firstSentAt = order.firstSentAt ?? order.sendingSince
        order.sendingSince = nil
        order.sendCount += 1
        if order.state == .sending || order.state == .unknown {
            order.state = .unknown
            order.gatewayCode = Self.interrupted
            order.nextQueryAt = now + policy.reconcileAfter
        }
    }

    private func settle(_ order: inout Order, succeeded: Bool, source: SettlementSource, paid: String?, raised: inout [OrderFlag], at now: Millis) {
        if order.flags.contains(where: { $0.code == .pastHorizon }) {
            raise(.settledAfterHorizon, "\(source.rawValue) reports it \(succeeded ? "succeeded" : "failed") after the sidecar stopped asking",
                  on: &order, into: &raised, at: now)
        }
        order.state = succeeded ? .succeeded : .failed
        order.settlementEventID = EventFactory.settlementID(order)
        order.settledSource = source
        order.settledAt = now
        order.paidAmount = paid
        order.nextQueryAt = nil
        order.notFoundSince = nil
        close(&order, at: now)
    }

    private func close(_ order: inout Order, at now: Millis) {
        order.closedAt = now
        order.nextQueryAt = nil
    }

    /// Adds a flag unless the order already has the same one (same code and detail): a contradiction
    /// reported again is one contradiction.
    private func raise(_ code: FlagCode, _ detail: String, on order: inout Order, into raised: inout [OrderFlag], at now: Millis) {
        guard !order.flags.contains(where: { $0.code == code && $0.detail == detail }) else { return }
        let flag = OrderFlag(code: code, detail: detail, at: now)
        order.flags.append(flag)
        raised.append(flag)
    }

    private func flaggedEvents(_ order: Order, _ raised: [OrderFlag], reported: ReportedAmounts, at now: Millis) -> [OutboxDraft] {
        raised.compactMap { flag in
            order.flags.lastIndex(of: flag).map { EventFactory.flagged(order, index: $0, reported: reported, at: now) }
        }
    }

    private func receipt(_ report: CallbackReport, duplicate: Bool, at now: Millis) -> CallbackReceipt {
        CallbackReceipt(kind: report.kind, mrn: report.mrn, outcome: .succeeded, duplicate: duplicate, body: report.rawBody,
                        sourceAddress: report.sourceAddress, at: now)
    }

    /// The write that turns `previous` (nil: nothing journaled) into `order`.
    private mutating func save(_ order: Order, from previous: Order?, at now: Millis, action: OrderAction, outcome: DecisionOutcome) -> Decision {
        var order = order
        order.updatedAt = now
        let change: JournalWrite.OrderChange
        if let previous {
            order.version = previous.version + 1
            change = .update(order, expectedVersion: previous.version)
        } else {
            order.version = 1
            change = .insert(order)
        }
        journaled = .order(order)
        return Decision(write: JournalWrite(order: change), action: action, outcome: outcome)
    }

    private func describe(_ millis: Millis?) -> String {
        millis.map(rfc3339) ?? "its first send"
    }
}
