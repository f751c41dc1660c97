import GatewayProtocol
import Testing

@testable import Orders

/// The order rules carry a create's `traceparent` to what is emitted for it, and do nothing else with it.
@Suite("Orders: the trace context of creates")
struct TraceParentTests {
    static let traceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    @Test("a create's traceparent goes with its order and with every event emitted for it later; a retry from another trace is the same request")
    func copiedToEvents() throws {
        var request = Fixture.request()
        request.traceParent = Self.traceParent
        var machine = OrderStateMachine(.nothing, policy: Fixture.policy)
        #expect(machine.create(request, at: Fixture.now).action == .send)
        guard case .order(let created) = machine.journaled else { Issue.record("no order journaled"); return }
        #expect(created.traceParent == Self.traceParent)
        _ = machine.createSent(.accepted, answer: RecordedAnswer(status: 202, body: "{}"), at: Fixture.now + 1)

        var retry = request
        retry.traceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        var again = machine
        #expect(again.create(retry, at: Fixture.now + 2).action == .replay(RecordedAnswer(status: 202, body: "{}")), "the same request: replayed")
        guard case .order(let replayed) = again.journaled else { Issue.record("the order is gone"); return }
        #expect(replayed.traceParent == Self.traceParent, "the first create's trace stays")

        // A callback paying another amount: a settlement and a flag, both carrying the create's trace.
        let callback = CallbackReport(kind: .payout, mrn: "M-1", amount: "5000", rawBody: "", sourceAddress: nil)
        let decision = machine.callback(callback, at: Fixture.now + 3)
        #expect(decision.events.count == 2)
        #expect(decision.events.allSatisfy { $0.traceParent == Self.traceParent })
    }

    @Test("a callback for an mrn nobody created carries no trace; neither does an order created without one")
    func noTrace() {
        var machine = OrderStateMachine(.nothing, policy: Fixture.policy)
        let decision = machine.callback(CallbackReport(kind: .payout, mrn: "M-1", amount: "500", rawBody: "", sourceAddress: nil), at: Fixture.now)
        #expect(!decision.events.isEmpty && decision.events.allSatisfy { $0.traceParent == nil })
        var plain = OrderStateMachine(.nothing, policy: Fixture.policy)
        _ = plain.create(Fixture.request(), at: Fixture.now)
        guard case .order(let order) = plain.journaled else { Issue.record("no order journaled"); return }
        #expect(order.traceParent == nil)
    }
}
