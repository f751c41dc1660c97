import GatewayProtocol
import Testing

@testable import Orders

/// Histories the adversarial run found, played through the machine step by step.
@Suite("The order state machine, scenarios")
struct OrderScenarioTests {
    let policy = Fixture.policy

    @Test("a create whose process died before answering says unknown to retries only until the queries know more")
    func interruptedThenSettled() {
        var machine = OrderStateMachine(.nothing, policy: policy)
        let request = Fixture.request()
        #expect(machine.create(request, at: 0).action == .send)
        // SIGKILL: no answer recorded. The reconciler finds it due once its send deadline has passed.
        #expect(machine.due(at: 50_000).action == .query)
        #expect(machine.create(request, at: 50_001).action == .outcomeUnknown, "still unknown")
        #expect(machine.query(.status(.failed), origin: .reconciler, at: 50_002).events.map(\.type) == [.payoutFailed])
        #expect(machine.create(request, at: 50_003).action == .report(.failed), "what is known now, not 'unknown' forever")
    }

    @Test("an unknown deposit the gateway does not know yet stays unknown until not-found answers span PAYSIDECAR_RESEND_AFTER")
    func depositNotFoundSpan() {
        var machine = OrderStateMachine(.nothing, policy: policy)
        let request = Fixture.request(.deposit)
        _ = machine.create(request, at: 0)
        _ = machine.createSent(.failed(requestSent: true, code: "gateway_timeout"), answer: RecordedAnswer(status: 504, body: "{}"), at: 1000)
        // The gateway may still be processing it: a retry must not send it again.
        _ = machine.query(.notFound, origin: .reconciler, at: 61_000)
        guard case .order(let early) = machine.journaled else { Issue.record("no order"); return }
        #expect(early.state == .unknown)
        #expect(machine.create(request, at: 61_001).action == .replay(RecordedAnswer(status: 504, body: "{}")), "not sent again")
        _ = machine.query(.notFound, origin: .reconciler, at: 600_000)
        guard case .order(let late) = machine.journaled else { Issue.record("no order"); return }
        #expect(late.state == .rejected && late.gatewayCode == "not_created", "after PAYSIDECAR_RESEND_AFTER of not-found answers")
        #expect(machine.create(request, at: 600_001).action == .send, "now a retry may send it")
    }

    @Test("an unknown deposit refused as a duplicate mrn is never sent again: flagged when the gateway does not find it")
    func depositDuplicateNotFound() {
        var machine = OrderStateMachine(.nothing, policy: policy)
        _ = machine.create(Fixture.request(.deposit), at: 0)
        _ = machine.createSent(.refused(code: "mrn_duplication"), answer: RecordedAnswer(status: 409, body: "{}"), at: 1000)
        let decision = machine.query(.notFound, origin: .reconciler, at: 900_000)
        #expect(decision.raised.map(\.code) == [.duplicateMrnNotFound])
        guard case .order(let order) = machine.journaled else { Issue.record("no order"); return }
        #expect(order.state == .unknown)
    }
}
