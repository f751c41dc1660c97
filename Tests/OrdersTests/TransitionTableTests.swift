import GatewayProtocol
import Testing

@testable import Orders

/// Every input the machine takes, each applied to a payout in every state the journal can hold.
enum Input: String, CaseIterable, Sendable {
    case createSame, createOther
    case sentAccepted, sentRefused, sentDuplicate, sentUndocumented, sentLost, sentNotSent
    case callback, callbackOtherAmount
    case queryPaid, queryFailed, queryWaiting, queryNotFound, queryRefused, queryNoAnswer, callerQueryPaid
    case due
    case resentAccepted, resentRefused
    case prune

    func apply(to machine: inout OrderStateMachine, at now: Millis) -> Decision {
        let answer = RecordedAnswer(status: 200, body: "{}")
        let callback = { (amount: String) in CallbackReport(kind: .payout, mrn: "M-1", amount: amount, rawBody: "form", sourceAddress: "127.0.0.1") }
        switch self {
        case .createSame: return machine.create(Fixture.request(), at: now)
        case .createOther: return machine.create(Fixture.request(fingerprint: "other"), at: now)
        case .sentAccepted: return machine.createSent(.accepted, answer: answer, at: now)
        case .sentRefused: return machine.createSent(.refused(code: "insufficient_balance"), answer: answer, at: now)
        case .sentDuplicate: return machine.createSent(.refused(code: "mrn_duplication"), answer: answer, at: now)
        case .sentUndocumented: return machine.createSent(.refused(code: "system_busy"), answer: answer, at: now)
        case .sentLost: return machine.createSent(.failed(requestSent: true, code: "gateway_timeout"), answer: answer, at: now)
        case .sentNotSent: return machine.createSent(.failed(requestSent: false, code: "gateway_unavailable"), answer: answer, at: now)
        case .callback: return machine.callback(callback("500"), at: now)
        case .callbackOtherAmount: return machine.callback(callback("5000"), at: now)
        case .queryPaid: return machine.query(.status(.paid), origin: .reconciler, at: now)
        case .queryFailed: return machine.query(.status(.failed), origin: .reconciler, at: now)
        case .queryWaiting: return machine.query(.status(.waiting), origin: .reconciler, at: now)
        case .queryNotFound: return machine.query(.notFound, origin: .reconciler, at: now)
        case .queryRefused: return machine.query(.refused(code: "sign_error"), origin: .reconciler, at: now)
        case .queryNoAnswer: return machine.query(.noAnswer, origin: .reconciler, at: now)
        case .callerQueryPaid: return machine.query(.status(.paid), origin: .caller, at: now)
        case .due: return machine.due(at: now)
        case .resentAccepted: return machine.resent(.accepted, at: now)
        case .resentRefused: return machine.resent(.refused(code: "system_busy"), at: now)
        case .prune: return machine.prune(closedBefore: now, at: now)
        }
    }
}

/// The order rules as a table: for each input and each state, the state after, the action, the events
/// queued and the flags raised. A payout of 500 created at 0; now is 1,000,000 ms (past
/// PAYSIDECAR_RESEND_AFTER of 10 minutes, within the 48 h horizon). `-` is none.
let transitionTable = """
createSame          | none               | sending              | send              | -                                        | -
createSame          | sending            | sending              | inProgress        | -                                        | -
createSame          | pending            | pending              | replay            | -                                        | -
createSame          | unknown            | unknown              | replay            | -                                        | -
createSame          | rejected           | rejected             | replay            | -                                        | -
createSame          | rejectedNotSent    | sending              | send              | -                                        | -
createSame          | succeeded          | succeeded            | replay            | -                                        | -
createSame          | failed             | failed               | report:failed     | -                                        | -
createSame          | tombstoneSucceeded | tombstone:succeeded  | report:succeeded  | -                                        | -
createSame          | tombstoneFailed    | tombstone:failed     | report:failed     | -                                        | -
createOther         | none               | sending              | send              | -                                        | -
createOther         | sending            | sending              | conflict          | -                                        | -
createOther         | pending            | pending              | conflict          | -                                        | -
createOther         | unknown            | unknown              | conflict          | -                                        | -
createOther         | rejected           | rejected             | conflict          | -                                        | -
createOther         | rejectedNotSent    | rejected             | conflict          | -                                        | -
createOther         | succeeded          | succeeded            | conflict          | -                                        | -
createOther         | failed             | failed               | conflict          | -                                        | -
createOther         | tombstoneSucceeded | tombstone:succeeded  | conflict          | -                                        | -
createOther         | tombstoneFailed    | tombstone:failed     | conflict          | -                                        | -
sentAccepted        | none               | nothing              | none              | -                                        | -
sentAccepted        | sending            | pending              | respond:accepted  | -                                        | -
sentAccepted        | pending            | pending              | respond:accepted  | -                                        | -
sentAccepted        | unknown            | pending              | respond:accepted  | -                                        | -
sentAccepted        | rejected           | rejected             | respond:accepted  | -                                        | -
sentAccepted        | rejectedNotSent    | rejected             | respond:accepted  | -                                        | -
sentAccepted        | succeeded          | succeeded            | respond:accepted  | -                                        | -
sentAccepted        | failed             | failed               | respond:accepted  | -                                        | -
sentAccepted        | tombstoneSucceeded | tombstone:succeeded  | none              | -                                        | -
sentAccepted        | tombstoneFailed    | tombstone:failed     | none              | -                                        | -
sentRefused         | none               | nothing              | none              | -                                        | -
sentRefused         | sending            | rejected             | respond:rejected  | -                                        | -
sentRefused         | pending            | pending              | respond:rejected  | -                                        | -
sentRefused         | unknown            | rejected             | respond:rejected  | -                                        | -
sentRefused         | rejected           | rejected             | respond:rejected  | -                                        | -
sentRefused         | rejectedNotSent    | rejected             | respond:rejected  | -                                        | -
sentRefused         | succeeded          | succeeded            | respond:rejected  | -                                        | -
sentRefused         | failed             | failed               | respond:rejected  | -                                        | -
sentRefused         | tombstoneSucceeded | tombstone:succeeded  | none              | -                                        | -
sentRefused         | tombstoneFailed    | tombstone:failed     | none              | -                                        | -
sentDuplicate       | none               | nothing              | none              | -                                        | -
sentDuplicate       | sending            | unknown              | respond:unknown   | -                                        | -
sentDuplicate       | pending            | pending              | respond:unknown   | -                                        | -
sentDuplicate       | unknown            | unknown              | respond:unknown   | -                                        | -
sentDuplicate       | rejected           | rejected             | respond:unknown   | -                                        | -
sentDuplicate       | rejectedNotSent    | rejected             | respond:unknown   | -                                        | -
sentDuplicate       | succeeded          | succeeded            | respond:unknown   | -                                        | -
sentDuplicate       | failed             | failed               | respond:unknown   | -                                        | -
sentDuplicate       | tombstoneSucceeded | tombstone:succeeded  | none              | -                                        | -
sentDuplicate       | tombstoneFailed    | tombstone:failed     | none              | -                                        | -
sentUndocumented    | none               | nothing              | none              | -                                        | -
sentUndocumented    | sending            | unknown              | respond:unknown   | -                                        | -
sentUndocumented    | pending            | pending              | respond:unknown   | -                                        | -
sentUndocumented    | unknown            | unknown              | respond:unknown   | -                                        | -
sentUndocumented    | rejected           | rejected             | respond:unknown   | -                                        | -
sentUndocumented    | rejectedNotSent    | rejected             | respond:unknown   | -                                        | -
sentUndocumented    | succeeded          | succeeded            | respond:unknown   | -                                        | -
sentUndocumented    | failed             | failed               | respond:unknown   | -                                        | -
sentUndocumented    | tombstoneSucceeded | tombstone:succeeded  | none              | -                                        | -
sentUndocumented    | tombstoneFailed    | tombstone:failed     | none              | -                                        | -
sentLost            | none               | nothing              | none              | -                                        | -
sentLost            | sending            | unknown              | respond:unknown   | -                                        | -
sentLost            | pending            | pending              | respond:unknown   | -                                        | -
sentLost            | unknown            | unknown              | respond:unknown   | -                                        | -
sentLost            | rejected           | rejected             | respond:unknown   | -                                        | -
sentLost            | rejectedNotSent    | rejected             | respond:unknown   | -                                        | -
sentLost            | succeeded          | succeeded            | respond:unknown   | -                                        | -
sentLost            | failed             | failed               | respond:unknown   | -                                        | -
sentLost            | tombstoneSucceeded | tombstone:succeeded  | none              | -                                        | -
sentLost            | tombstoneFailed    | tombstone:failed     | none              | -                                        | -
sentNotSent         | none               | nothing              | none              | -                                        | -
sentNotSent         | sending            | rejected             | respond:not_sent  | -                                        | -
sentNotSent         | pending            | pending              | respond:not_sent  | -                                        | -
sentNotSent         | unknown            | unknown              | respond:not_sent  | -                                        | -
sentNotSent         | rejected           | rejected             | respond:not_sent  | -                                        | -
sentNotSent         | rejectedNotSent    | rejected             | respond:not_sent  | -                                        | -
sentNotSent         | succeeded          | succeeded            | respond:not_sent  | -                                        | -
sentNotSent         | failed             | failed               | respond:not_sent  | -                                        | -
sentNotSent         | tombstoneSucceeded | tombstone:succeeded  | none              | -                                        | -
sentNotSent         | tombstoneFailed    | tombstone:failed     | none              | -                                        | -
callback            | none               | succeeded            | acknowledge       | payout.flagged                           | unknown_order
callback            | sending            | succeeded            | acknowledge       | payout.succeeded                         | -
callback            | pending            | succeeded            | acknowledge       | payout.succeeded                         | -
callback            | unknown            | succeeded            | acknowledge       | payout.succeeded                         | -
callback            | rejected           | succeeded            | acknowledge       | payout.succeeded,payout.flagged          | contradicting_outcome
callback            | rejectedNotSent    | succeeded            | acknowledge       | payout.succeeded,payout.flagged          | contradicting_outcome
callback            | succeeded          | succeeded            | acknowledge       | -                                        | -
callback            | failed             | failed               | acknowledge       | payout.flagged                           | contradicting_outcome
callback            | tombstoneSucceeded | tombstone:succeeded  | acknowledge       | -                                        | -
callback            | tombstoneFailed    | tombstone:failed     | acknowledge       | payout.flagged                           | contradicting_outcome
callbackOtherAmount | none               | succeeded            | acknowledge       | payout.flagged                           | unknown_order
callbackOtherAmount | sending            | succeeded            | acknowledge       | payout.succeeded,payout.flagged          | amount_mismatch
callbackOtherAmount | pending            | succeeded            | acknowledge       | payout.succeeded,payout.flagged          | amount_mismatch
callbackOtherAmount | unknown            | succeeded            | acknowledge       | payout.succeeded,payout.flagged          | amount_mismatch
callbackOtherAmount | rejected           | succeeded            | acknowledge       | payout.succeeded,payout.flagged,payout.flagged | contradicting_outcome,amount_mismatch
callbackOtherAmount | rejectedNotSent    | succeeded            | acknowledge       | payout.succeeded,payout.flagged,payout.flagged | contradicting_outcome,amount_mismatch
callbackOtherAmount | succeeded          | succeeded            | acknowledge       | payout.flagged                           | amount_mismatch
callbackOtherAmount | failed             | failed               | acknowledge       | payout.flagged                           | contradicting_outcome
callbackOtherAmount | tombstoneSucceeded | tombstone:succeeded  | acknowledge       | -                                        | -
callbackOtherAmount | tombstoneFailed    | tombstone:failed     | acknowledge       | payout.flagged                           | contradicting_outcome
queryPaid           | none               | nothing              | none              | -                                        | -
queryPaid           | sending            | sending              | none              | -                                        | -
queryPaid           | pending            | succeeded            | none              | payout.succeeded                         | -
queryPaid           | unknown            | succeeded            | none              | payout.succeeded                         | -
queryPaid           | rejected           | succeeded            | none              | payout.succeeded,payout.flagged          | contradicting_outcome
queryPaid           | rejectedNotSent    | succeeded            | none              | payout.succeeded,payout.flagged          | contradicting_outcome
queryPaid           | succeeded          | succeeded            | none              | -                                        | -
queryPaid           | failed             | failed               | none              | payout.flagged                           | contradicting_outcome
queryPaid           | tombstoneSucceeded | tombstone:succeeded  | none              | -                                        | -
queryPaid           | tombstoneFailed    | tombstone:failed     | none              | -                                        | -
queryFailed         | none               | nothing              | none              | -                                        | -
queryFailed         | sending            | sending              | none              | -                                        | -
queryFailed         | pending            | failed               | none              | payout.failed                            | -
queryFailed         | unknown            | failed               | none              | payout.failed                            | -
queryFailed         | rejected           | rejected             | none              | -                                        | -
queryFailed         | rejectedNotSent    | rejected             | none              | -                                        | -
queryFailed         | succeeded          | succeeded            | none              | payout.flagged                           | contradicting_outcome
queryFailed         | failed             | failed               | none              | -                                        | -
queryFailed         | tombstoneSucceeded | tombstone:succeeded  | none              | -                                        | -
queryFailed         | tombstoneFailed    | tombstone:failed     | none              | -                                        | -
queryWaiting        | none               | nothing              | none              | -                                        | -
queryWaiting        | sending            | sending              | none              | -                                        | -
queryWaiting        | pending            | pending              | none              | -                                        | -
queryWaiting        | unknown            | pending              | none              | -                                        | -
queryWaiting        | rejected           | pending              | none              | payout.flagged                           | contradicting_outcome
queryWaiting        | rejectedNotSent    | pending              | none              | -                                        | -
queryWaiting        | succeeded          | succeeded            | none              | -                                        | -
queryWaiting        | failed             | failed               | none              | -                                        | -
queryWaiting        | tombstoneSucceeded | tombstone:succeeded  | none              | -                                        | -
queryWaiting        | tombstoneFailed    | tombstone:failed     | none              | -                                        | -
queryNotFound       | none               | nothing              | none              | -                                        | -
queryNotFound       | sending            | sending              | none              | -                                        | -
queryNotFound       | pending            | pending              | none              | -                                        | -
queryNotFound       | unknown            | unknown              | resend            | -                                        | -
queryNotFound       | rejected           | rejected             | none              | -                                        | -
queryNotFound       | rejectedNotSent    | rejected             | none              | -                                        | -
queryNotFound       | succeeded          | succeeded            | none              | -                                        | -
queryNotFound       | failed             | failed               | none              | -                                        | -
queryNotFound       | tombstoneSucceeded | tombstone:succeeded  | none              | -                                        | -
queryNotFound       | tombstoneFailed    | tombstone:failed     | none              | -                                        | -
queryRefused        | none               | nothing              | none              | -                                        | -
queryRefused        | sending            | sending              | none              | -                                        | -
queryRefused        | pending            | pending              | none              | -                                        | -
queryRefused        | unknown            | unknown              | none              | -                                        | -
queryRefused        | rejected           | rejected             | none              | -                                        | -
queryRefused        | rejectedNotSent    | rejected             | none              | -                                        | -
queryRefused        | succeeded          | succeeded            | none              | -                                        | -
queryRefused        | failed             | failed               | none              | -                                        | -
queryRefused        | tombstoneSucceeded | tombstone:succeeded  | none              | -                                        | -
queryRefused        | tombstoneFailed    | tombstone:failed     | none              | -                                        | -
queryNoAnswer       | none               | nothing              | none              | -                                        | -
queryNoAnswer       | sending            | sending              | none              | -                                        | -
queryNoAnswer       | pending            | pending              | none              | -                                        | -
queryNoAnswer       | unknown            | unknown              | none              | -                                        | -
queryNoAnswer       | rejected           | rejected             | none              | -                                        | -
queryNoAnswer       | rejectedNotSent    | rejected             | none              | -                                        | -
queryNoAnswer       | succeeded          | succeeded            | none              | -                                        | -
queryNoAnswer       | failed             | failed               | none              | -                                        | -
queryNoAnswer       | tombstoneSucceeded | tombstone:succeeded  | none              | -                                        | -
queryNoAnswer       | tombstoneFailed    | tombstone:failed     | none              | -                                        | -
callerQueryPaid     | none               | nothing              | none              | -                                        | -
callerQueryPaid     | sending            | sending              | none              | -                                        | -
callerQueryPaid     | pending            | succeeded            | none              | payout.succeeded                         | -
callerQueryPaid     | unknown            | succeeded            | none              | payout.succeeded                         | -
callerQueryPaid     | rejected           | succeeded            | none              | payout.succeeded,payout.flagged          | contradicting_outcome
callerQueryPaid     | rejectedNotSent    | succeeded            | none              | payout.succeeded,payout.flagged          | contradicting_outcome
callerQueryPaid     | succeeded          | succeeded            | none              | -                                        | -
callerQueryPaid     | failed             | failed               | none              | payout.flagged                           | contradicting_outcome
callerQueryPaid     | tombstoneSucceeded | tombstone:succeeded  | none              | -                                        | -
callerQueryPaid     | tombstoneFailed    | tombstone:failed     | none              | -                                        | -
due                 | none               | nothing              | none              | -                                        | -
due                 | sending            | unknown              | query             | -                                        | -
due                 | pending            | pending              | query             | -                                        | -
due                 | unknown            | unknown              | query             | -                                        | -
due                 | rejected           | rejected             | none              | -                                        | -
due                 | rejectedNotSent    | rejected             | none              | -                                        | -
due                 | succeeded          | succeeded            | none              | -                                        | -
due                 | failed             | failed               | none              | -                                        | -
due                 | tombstoneSucceeded | tombstone:succeeded  | none              | -                                        | -
due                 | tombstoneFailed    | tombstone:failed     | none              | -                                        | -
resentAccepted      | none               | nothing              | none              | -                                        | -
resentAccepted      | sending            | sending              | none              | -                                        | -
resentAccepted      | pending            | pending              | none              | -                                        | -
resentAccepted      | unknown            | pending              | none              | -                                        | -
resentAccepted      | rejected           | rejected             | none              | -                                        | -
resentAccepted      | rejectedNotSent    | rejected             | none              | -                                        | -
resentAccepted      | succeeded          | succeeded            | none              | -                                        | -
resentAccepted      | failed             | failed               | none              | -                                        | -
resentAccepted      | tombstoneSucceeded | tombstone:succeeded  | none              | -                                        | -
resentAccepted      | tombstoneFailed    | tombstone:failed     | none              | -                                        | -
resentRefused       | none               | nothing              | none              | -                                        | -
resentRefused       | sending            | sending              | none              | -                                        | -
resentRefused       | pending            | pending              | none              | -                                        | -
resentRefused       | unknown            | unknown              | none              | payout.flagged                           | resend_refused
resentRefused       | rejected           | rejected             | none              | -                                        | -
resentRefused       | rejectedNotSent    | rejected             | none              | -                                        | -
resentRefused       | succeeded          | succeeded            | none              | -                                        | -
resentRefused       | failed             | failed               | none              | -                                        | -
resentRefused       | tombstoneSucceeded | tombstone:succeeded  | none              | -                                        | -
resentRefused       | tombstoneFailed    | tombstone:failed     | none              | -                                        | -
prune               | none               | nothing              | none              | -                                        | -
prune               | sending            | sending              | none              | -                                        | -
prune               | pending            | pending              | none              | -                                        | -
prune               | unknown            | unknown              | none              | -                                        | -
prune               | rejected           | nothing              | none              | -                                        | -
prune               | rejectedNotSent    | nothing              | none              | -                                        | -
prune               | succeeded          | tombstone:succeeded  | none              | -                                        | -
prune               | failed             | tombstone:failed     | none              | -                                        | -
prune               | tombstoneSucceeded | tombstone:succeeded  | none              | -                                        | -
prune               | tombstoneFailed    | tombstone:failed     | none              | -                                        | -
"""

struct Row: Sendable, CustomTestStringConvertible {
    var input: Input
    var fixture: Fixture
    var state: String
    var action: String
    var events: [String]
    var flags: [String]
    var testDescription: String { "\(input.rawValue) on \(fixture.rawValue)" }

    static let all: [Row] = transitionTable.split(separator: "\n").map { line in
        let cells = line.split(separator: "|").map { $0.trimmingCharacters() }
        func list(_ cell: String) -> [String] { cell == "-" ? [] : cell.split(separator: ",").map(String.init) }
        return Row(input: Input(rawValue: cells[0])!, fixture: Fixture(rawValue: cells[1])!, state: cells[2], action: cells[3],
                   events: list(cells[4]), flags: list(cells[5]))
    }
}

extension Substring {
    fileprivate func trimmingCharacters() -> String {
        var s = self
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}

@Suite("The order state machine, state by input")
struct TransitionTableTests {
    @Test("the table covers every state × every input exactly once")
    func complete() {
        let cells = Row.all.map { "\($0.input.rawValue)|\($0.fixture.rawValue)" }
        #expect(Set(cells).count == cells.count, "a cell appears twice")
        #expect(cells.count == Input.allCases.count * Fixture.allCases.count)
    }

    @Test("each transition as the table says", arguments: Row.all)
    func transition(_ row: Row) {
        var machine = OrderStateMachine(row.fixture.journaled(), policy: Fixture.policy)
        let before = machine.journaled
        let decision = row.input.apply(to: &machine, at: Fixture.now)
        #expect(describe(machine.journaled) == row.state, "state")
        #expect(describe(decision.action) == row.action, "action")
        #expect(decision.events.map(\.type.rawValue) == row.events, "events")
        #expect(decision.raised.map(\.code.rawValue) == row.flags, "flags")
        // What the decision writes is what the machine now holds, checked against the version it was based on.
        if decision.write == nil {
            #expect(machine.journaled == before, "no write, no change")
        }
        switch (decision.write?.order, before, machine.journaled) {
        case (.update(let written, let expected)?, .order(let old), .order(let now)):
            #expect(expected == old.version && written == now && now.version == old.version + 1)
        case (.insert(let written)?, _, .order(let now)):
            #expect(written == now && now.version == 1)
        case (.delete(_, _, let expected)?, .order(let old), _):
            #expect(expected == old.version)
        case (nil, _, _):
            break
        default:
            Issue.record("a write that does not match the new journal value: \(String(describing: decision.write?.order))")
        }
        // Every flag raised is on the order and has exactly its event.
        #expect(decision.events.filter { $0.type == .payoutFlagged }.count == decision.raised.count)
        if case .order(let order) = machine.journaled {
            for flag in decision.raised { #expect(order.flags.contains(flag)) }
        }
        // Callbacks are acknowledged only after a durable write.
        if decision.action == .acknowledge, let write = decision.write {
            #expect(write.durable)
        }
    }
}
