import GatewayProtocol
import PropertyBased
import Testing

@testable import Orders

/// One thing that happens to an order, after `advance` milliseconds: a caller creates (or retries) it, the
/// gateway calls back, a caller queries it, the reconciler looks at it, or the journal is pruned. The
/// gateway's answers are drawn at random, contradictions included: the invariants must hold whatever it says.
struct Step: Sendable, CustomStringConvertible {
    enum Kind: CaseIterable, Sendable { case create, callback, callerQuery, reconcile, prune }
    var kind: Kind
    var advance: Millis
    /// Which gateway answer (an index into the tables below).
    var answer: Int
    /// Which amounts a callback reports.
    var amounts: Int
    /// The process dies right after sending (a create or a re-send): its outcome is never recorded.
    var crash: Bool

    var description: String { "\(kind)(+\(advance)ms, answer \(answer), amounts \(amounts)\(crash ? ", crash" : ""))" }

    static let createAnswers: [CreateReport] = [
        .accepted, .refused(code: "insufficient_balance"), .refused(code: "invalid_data"), .refused(code: "mrn_duplication"),
        .refused(code: "system_busy"), .failed(requestSent: true, code: "gateway_timeout"), .failed(requestSent: false, code: "gateway_unavailable"),
    ]
    static let queryAnswers: [QueryReport] = [
        .status(.paid), .status(.failed), .status(.waiting), .notFound, .notFound, .notFound, .refused(code: "sign_error"), .noAnswer, .status(.other(7)),
    ]
    /// (amount paid, originAmount, channel) a callback may report for an order of 500 on channel 2.
    static let callbackAmounts: [(String, String, Int)] = [("500", "500", 2), ("500.00", "500", 2), ("5000", "500", 2), ("0", "500", 2), ("500", "600", 3)]
}

let stepGen = zip(Gen<Step.Kind>.case, Gen.int(in: 0...1_200_000), Gen.int(in: 0...20), Gen.int(in: 0...4), Gen.bool(0.15))
    .map { Step(kind: $0, advance: Millis($1), answer: $2, amounts: $3, crash: $4) }
let scenarioGen = zip(Gen<OrderKind>.case, stepGen.array(of: 1...40))

/// Plays a scenario through the machine as the sidecar would (every `send` followed by its outcome unless the
/// process "crashes", every due order queried, every `resend` sent), checking the invariants after each decision.
struct Simulation {
    static let policy = OrderPolicy(reconcileAfter: 60_000, horizon: 2 * 3_600_000, resendAfter: 600_000, sendDeadline: 40_000,
                                    acceptUnknownOrderCallbacks: true)
    let kind: OrderKind
    var journaled: Journaled = .nothing
    var now: Millis = 0
    /// Every event queued, in order.
    var events: [OutboxDraft] = []
    var flagsRaised = 0
    /// The outcome once settled: it must never change.
    var settled: OrderState?
    /// Times of the sends that may have created the payout at the gateway, and whether each was a re-send.
    var sends: [(at: Millis, resend: Bool)] = []

    init(kind: OrderKind) { self.kind = kind }

    var request: CreateRequest {
        CreateRequest(kind: kind, mrn: "M-1", amount: "500", channelId: kind == .deposit ? 2 : nil, notifyUrl: nil, request: #"{"mrn":"M-1"}"#, fingerprint: "fp")
    }

    mutating func decide(_ input: (inout OrderStateMachine) -> Decision) -> Decision {
        var machine = OrderStateMachine(journaled, policy: Self.policy)
        let before = journaled
        let decision = input(&machine)
        journaled = machine.journaled
        check(decision, before: before)
        return decision
    }

    mutating func play(_ step: Step) {
        now += step.advance
        let now = self.now
        let request = self.request
        let kind = self.kind
        switch step.kind {
        case .create:
            let decision = decide { $0.create(request, at: now) }
            if decision.action == .send { send(step, resend: false) }
        case .callback:
            let (paid, origin, channel) = Step.callbackAmounts[step.amounts]
            let report = CallbackReport(kind: kind, mrn: "M-1", amount: paid, originAmount: kind == .deposit ? origin : nil,
                                        channelId: kind == .deposit ? channel : nil, rawBody: "form", sourceAddress: nil)
            _ = decide { $0.callback(report, at: now) }
        case .callerQuery:
            let answer = Step.queryAnswers[step.answer % Step.queryAnswers.count]
            _ = decide { $0.query(answer, origin: .caller, at: now) }
        case .reconcile:
            guard case .order(let order) = journaled, let due = order.nextQueryAt, due <= now else { return }
            guard decide({ $0.due(at: now) }).action == .query else { return }
            let answer = Step.queryAnswers[step.answer % Step.queryAnswers.count]
            if decide({ $0.query(answer, origin: .reconciler, at: now) }).action != .none {
                send(step, resend: true)
            }
        case .prune:
            _ = decide { $0.prune(closedBefore: now - 1_800_000, at: now) }
        }
    }

    /// A create (or re-send) goes out; unless the process dies, its outcome is reported.
    mutating func send(_ step: Step, resend: Bool) {
        let now = self.now
        let answer = Step.createAnswers[step.answer % Step.createAnswers.count]
        // Whether this send may have created a payout at the gateway: anything but "never sent" and a refusal
        // with a documented code that proves it does not exist.
        let mayExist: Bool
        switch answer {
        case .failed(requestSent: false, _), .formIssued: mayExist = false
        case .refused(let code): mayExist = code == "mrn_duplication" || !GatewayResultCode.documentedErrors.contains(GatewayResultCode(rawValue: code))
        default: mayExist = true
        }
        if mayExist || step.crash { sends.append((now, resend)) }
        guard !step.crash else { return }
        let decision = resend ? decide { $0.resent(answer, at: now) } : decide { $0.createSent(answer, answer: RecordedAnswer(status: 200, body: "{}"), at: now) }
        if case .respond(let verdict) = decision.action {
            switch (verdict, answer) {
            case (.rejected, .refused(let code)):
                #expect(GatewayResultCode.documentedErrors.contains(GatewayResultCode(rawValue: code)) && code != "mrn_duplication",
                        "a plain refusal only for a documented code that proves the order does not exist (\(code))")
            case (.notSent, .failed(requestSent: false, _)), (.accepted, .accepted), (.unknown, _):
                break
            default:
                Issue.record("verdict \(verdict) for \(answer)")
            }
        }
    }

    mutating func check(_ decision: Decision, before: Journaled) {
        events += decision.events
        flagsRaised += decision.raised.count
        // Every contradiction yields exactly one flag event, and every flag stays on the order.
        #expect(decision.events.filter { $0.type == .flagged(kind) }.count == decision.raised.count, "one *.flagged event per flag raised")
        if case .order(let order) = journaled {
            for flag in decision.raised { #expect(order.flags.contains(flag), "a raised flag stays on the order") }
            if case .order(let old) = before { #expect(Array(order.flags.prefix(old.flags.count)) == old.flags, "flags are never removed") }
        }
        // A terminal outcome never changes (a tombstone keeps it).
        let outcome: OrderState?
        switch journaled {
        case .order(let order): outcome = order.state.isSettled ? order.state : nil
        case .tombstone(let tombstone): outcome = tombstone.outcome
        case .nothing: outcome = nil
        }
        if let settled { #expect(outcome == settled, "a settled outcome never changes (\(settled) became \(String(describing: outcome)))") }
        settled = settled ?? outcome
        // Callbacks are answered `success` only after a durable write.
        if decision.action == .acknowledge, let write = decision.write { #expect(write.durable, "acknowledged after a durable write (or with nothing new to store)") }
        // One payment, one settlement event; none for an order nobody here created.
        let settlements = events.filter { $0.type == .settlement(kind, succeeded: true) || $0.type == .settlement(kind, succeeded: false) }
        #expect(settlements.count <= 1, "at most one settlement event: \(settlements.map(\.type))")
        if case .order(let order) = journaled {
            if !order.createdBySidecar { #expect(settlements.isEmpty, "never a plain settlement for an mrn nobody created") }
            if let id = settlements.first?.id { #expect(order.settlementEventID == id) }
        }
        #expect(Set(events.map(\.id)).count == events.count, "each event once")
        // A payout is never sent twice while the first send may still be in processing; nor is a deposit (its
        // second send is a caller's retry, allowed once the gateway's queries have not found it for long enough).
        if kind == .payout {
            #expect(sends.count <= 2, "at most the create and one re-send may have created the payout: \(sends)")
            if sends.count == 2 {
                #expect(sends[1].resend && sends[1].at - sends[0].at >= Self.policy.resendAfter, "a second send only as a re-send after PAYSIDECAR_RESEND_AFTER: \(sends)")
                if case .order(let order) = journaled { #expect(sends[1].at <= order.createdAt + Self.policy.horizon, "never re-sent past the horizon") }
            }
        } else {
            for (earlier, later) in zip(sends, sends.dropFirst()) {
                #expect(later.at - earlier.at >= Self.policy.resendAfter, "a deposit is sent again only after PAYSIDECAR_RESEND_AFTER of not-found answers: \(sends)")
            }
        }
        // Once the outcome is known, a retried create is never told "unknown".
        if settled != nil, decision.action == .outcomeUnknown { Issue.record("a settled order answered a retry with outcomeUnknown") }
    }
}

@Suite("The order state machine, over random histories")
struct OrderPropertyTests {
    @Test("invariants hold over random sequences of creates, callbacks, queries, reconciler passes, crashes and pruning")
    func invariants() async {
        await propertyCheck(count: 1500, input: scenarioGen) { kind, steps in
            var simulation = Simulation(kind: kind)
            for step in steps { simulation.play(step) }
            // Across the whole history: every flag raised was told once.
            #expect(simulation.events.filter { $0.type == .flagged(kind) }.count == simulation.flagsRaised)
        }
    }

    @Test("the same invariants over 5,000 histories from a fixed seed (reproducible in CI)")
    func fixedSeed() {
        var rng = Xoshiro(seed: (0x5EED, 42, 7, 2026))
        for _ in 0..<5000 {
            let (kind, steps) = scenarioGen.run(using: &rng)
            var simulation = Simulation(kind: kind)
            for step in steps { simulation.play(step) }
        }
    }
}
