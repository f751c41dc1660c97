import CurlHTTP
import Foundation
import GRDB
@testable import Ledger
import Sidecar
import TestSupport
import Testing

/// Callbacks from the simulator go nowhere, so only the reconciler can learn outcomes.
let noCallbacks = ["PAYSIDECAR_PUBLIC_URL": "http://127.0.0.1:1", "PAYSIDECAR_RECONCILE_AFTER": "200ms"]

extension E2E {
    func simBalance() async throws -> String? {
        try object(try await client.execute(CurlRequest(url: gateway + "/_sim/balance")))["amount"] as? String
    }

    func simPost(_ path: String, _ body: String = "") async throws {
        _ = try await client.execute(CurlRequest(method: "POST", url: gateway + path, body: Array(body.utf8)))
    }

    func creates(_ path: String) async throws -> Int {
        try await gatewayRequests().filter { ($0["path"] as? String) == path }.count
    }

    func webhookBodies() -> [[String: Any]] {
        receiver.requests.compactMap { try? JSONSerialization.jsonObject(with: Data($0.body)) as? [String: Any] }
    }
}

@Suite("Journal, idempotent creates and reconciliation")
struct JournalTests {
    @Test("same mrn, same body: the recorded answer again and no second gateway call (both modes and payouts)")
    func idempotentReplay() async throws {
        try await withSidecar { (e2e: E2E) async throws in
            let deposit = #"{"mrn":"D-idem","amount":"10.00","channelId":1,"returnUrl":"https://shop.example/r"}"#
            let first = try await e2e.post("/v1/deposits", json: deposit)
            let second = try await e2e.post("/v1/deposits", json: #"{"returnUrl":"https://shop.example/r","channelId":1,"amount":"10.00","mrn":"D-idem"}"#)
            #expect(first.status == 201 && second.status == 201)
            #expect(first.body == second.body)
            #expect(second.headers["idempotent-replayed"] == "true")
            #expect(try await e2e.creates("/api/Pay/Create") == 1)

            let page = #"{"mrn":"D-idem-page","amount":5,"channelId":2,"returnUrl":"https://shop.example/r","mode":"page"}"#
            let form1 = try await e2e.post("/v1/deposits", json: page)
            let form2 = try await e2e.post("/v1/deposits", json: page)
            #expect(form1.body == form2.body, "the same signed form")

            let payout = #"{"mrn":"P-idem","amount":7,"bankName":"b","accountName":"a","accountNumber":"1"}"#
            #expect(try await e2e.post("/v1/payouts", json: payout).status == 202)
            let replay = try await e2e.post("/v1/payouts", json: payout)
            #expect(replay.status == 202)
            #expect(replay.headers["idempotent-replayed"] == "true")
            #expect(try await e2e.creates("/api/Payouts/Create") == 1)

            // A refusal is an outcome too: replayed, not re-sent.
            try await e2e.addFault(#"{"path":"/api/Payouts/Create","kind":"answer","value":{"error":"insufficient_balance"},"count":1}"#)
            let poor = #"{"mrn":"P-poor","amount":7,"bankName":"b","accountName":"a","accountNumber":"1"}"#
            #expect(try await e2e.post("/v1/payouts", json: poor).status == 422)
            #expect(try await e2e.post("/v1/payouts", json: poor).status == 422)
            #expect(try await e2e.creates("/api/Payouts/Create") == 2)
        }
    }

    @Test("same mrn, different body: 409 mrn_conflict, nothing sent")
    func conflict() async throws {
        try await withSidecar { (e2e: E2E) async throws in
            #expect(try await e2e.post("/v1/payouts", json: #"{"mrn":"P-c","amount":7,"bankName":"b","accountName":"a","accountNumber":"1"}"#).status == 202)
            let other = try await e2e.post("/v1/payouts", json: #"{"mrn":"P-c","amount":8,"bankName":"b","accountName":"a","accountNumber":"1"}"#)
            #expect(other.status == 409)
            #expect(try object(other)["code"] as? String == "mrn_conflict")
            #expect(try await e2e.creates("/api/Payouts/Create") == 1)
        }
    }

    @Test("concurrent duplicates: one goes to the gateway, the other gets 409 request_in_progress")
    func inProgress() async throws {
        // The first create is held at the gateway long enough for the second to arrive on a loaded machine.
        try await withSidecar(settings: ["PAYSIDECAR_GATEWAY_TIMEOUT": "30s"]) { (e2e: E2E) async throws in
            try await e2e.addFault(#"{"path":"/api/Payouts/Create","kind":"delay","value":"5s","count":1}"#)
            let body = #"{"mrn":"P-race","amount":7,"bankName":"b","accountName":"a","accountNumber":"1"}"#
            async let a = e2e.post("/v1/payouts", json: body)
            // The second leaves once the first is at the gateway (held there by the delay).
            #expect(await eventually { (try? await e2e.creates("/api/Payouts/Create")) == 1 })
            async let b = e2e.post("/v1/payouts", json: body)
            let (first, second) = try await (a, b)
            #expect(first.status == 202)
            #expect(second.status == 409)
            #expect(try object(second)["code"] as? String == "request_in_progress")
            #expect(try await e2e.creates("/api/Payouts/Create") == 1)
            #expect(try await e2e.post("/v1/payouts", json: body).status == 202, "once finished, a retry gets the answer")
        }
    }

    @Test("a timed-out payout is resolved by the reconciler to succeeded, paid once (the balance proves it)")
    func timedOutPayout() async throws {
        try await withSidecar(settings: noCallbacks.merging(["PAYSIDECAR_GATEWAY_TIMEOUT": "1s"]) { $1 }) { (e2e: E2E) async throws in
            // The timeout leaves time for the create to reach the simulator even on a loaded machine (with 300 ms
            // it sometimes had not arrived yet: the reconciler then rightly found no order and sent it again).
            let before = try await e2e.simBalance()
            try await e2e.addFault(#"{"path":"/api/Payouts/Create","kind":"delay","value":"3s","count":1}"#)
            let body = #"{"mrn":"P-timeout","amount":100,"bankName":"b","accountName":"a","accountNumber":"1"}"#
            let timedOut = try await e2e.post("/v1/payouts", json: body)
            #expect(timedOut.status == 504)
            #expect(try object(timedOut)["orderStatus"] as? String == "unknown")
            let again = try await e2e.post("/v1/payouts", json: body)
            #expect(again.status == 504, "a retry does not re-send blindly")
            #expect(try await e2e.creates("/api/Payouts/Create") == 1)
            try await e2e.simPost("/_sim/payouts/P-timeout/complete")
            #expect(await eventually { e2e.webhookBodies().contains { $0["type"] as? String == "payout.succeeded" } })
            let data = try #require(e2e.webhookBodies().first?["data"] as? [String: Any])
            #expect(data["source"] as? String == "query")
            #expect(data["mrn"] as? String == "P-timeout")
            #expect(try await e2e.creates("/api/Payouts/Create") == 1)
            let expected = String(format: "%.2f", (Double(before ?? "0") ?? 0) - 100)
            #expect(try await e2e.simBalance() == expected, "paid out once")
            let view = try object(try await e2e.get("/v1/payouts/P-timeout"))
            #expect(view["status"] as? String == "succeeded")
            let retry = try await e2e.post("/v1/payouts", json: body)
            #expect(retry.status == 202, "once known, a retry says so instead of replaying 'unknown'")
            #expect(try object(retry)["status"] as? String == "succeeded")
            #expect(try await e2e.creates("/api/Payouts/Create") == 1)
            #expect((view["journal"] as? [String: Any])?["settlementSource"] as? String == "query")
        }
    }

    @Test("an unknown payout the gateway never got is re-sent with the same mrn and paid once")
    func unknownPayoutResent() async throws {
        try await withSidecar(settings: noCallbacks) { (e2e: E2E) async throws in
            let before = try await e2e.simBalance()
            try await e2e.addFault(#"{"path":"/api/Payouts/Create","kind":"status","value":503,"count":1}"#)
            let body = #"{"mrn":"P-lost","amount":100,"bankName":"b","accountName":"a","accountNumber":"1"}"#
            let lost = try await e2e.post("/v1/payouts", json: body)
            #expect(lost.status == 502)
            #expect(try object(lost)["orderStatus"] as? String == "unknown")
            #expect(await eventually { (try? await e2e.creates("/api/Payouts/Create")) == 2 }, "the reconciler re-sent it")
            #expect(await eventually { (try? await e2e.client.execute(CurlRequest(url: e2e.gateway + "/_sim/orders/P-lost")))?.status == 200 })
            try await e2e.simPost("/_sim/payouts/P-lost/complete")
            #expect(await eventually { e2e.webhookBodies().contains { $0["type"] as? String == "payout.succeeded" } })
            let expected = String(format: "%.2f", (Double(before ?? "0") ?? 0) - 100)
            #expect(try await e2e.simBalance() == expected)
        }
    }

    @Test("a deposit paid without a callback is discovered by the reconciler (source query); a failed one emits deposit.failed")
    func depositsByQuery() async throws {
        try await withSidecar(settings: noCallbacks) { (e2e: E2E) async throws in
            _ = try await e2e.post("/v1/deposits", json: #"{"mrn":"D-q-paid","amount":"50","channelId":1,"returnUrl":"https://shop.example/r"}"#)
            _ = try await e2e.post("/v1/deposits", json: #"{"mrn":"D-q-failed","amount":"60","channelId":1,"returnUrl":"https://shop.example/r"}"#)
            try await e2e.simPost("/_sim/deposits/D-q-paid/pay")
            try await e2e.simPost("/_sim/deposits/D-q-failed/fail")
            #expect(await eventually { e2e.webhookBodies().count == 2 })
            let byMrn = Dictionary(uniqueKeysWithValues: e2e.webhookBodies().map { (($0["data"] as? [String: Any])?["mrn"] as? String ?? "", $0) })
            #expect(byMrn["D-q-paid"]?["type"] as? String == "deposit.succeeded")
            #expect((byMrn["D-q-paid"]?["data"] as? [String: Any])?["source"] as? String == "query")
            #expect(byMrn["D-q-failed"]?["type"] as? String == "deposit.failed")
            #expect(try object(try await e2e.get("/v1/deposits/D-q-failed"))["status"] as? String == "failed")
        }
    }

    @Test("callback and query racing for the same orders emit each outcome once")
    func raceEmitsOnce() async throws {
        try await withSidecar(settings: ["PAYSIDECAR_RECONCILE_AFTER": "50ms"]) { (e2e: E2E) async throws in
            let mrns = (0..<10).map { "P-race-\($0)" }
            for mrn in mrns { _ = try await e2e.post("/v1/payouts", json: #"{"mrn":"\#(mrn)","amount":1,"bankName":"b","accountName":"a","accountNumber":"1"}"#) }
            try await Task.sleep(for: .milliseconds(60))
            for mrn in mrns { try await e2e.simPost("/_sim/payouts/\(mrn)/complete") }
            #expect(await eventually { Set(e2e.webhookBodies().compactMap { ($0["data"] as? [String: Any])?["mrn"] as? String }).count == 10 })
            try await Task.sleep(for: .milliseconds(500))
            #expect(e2e.webhookBodies().count == 10, "one event per order")
            #expect(try await e2e.allEvents().count == 10)
        }
    }

    @Test("integrity: deposit originAmount and payout amount must match the journal; unknown orders per setting")
    func integrity() async throws {
        try await withSidecar { (e2e: E2E) async throws in
            _ = try await e2e.post("/v1/deposits", json: #"{"mrn":"D-int","amount":"100.50","channelId":2,"returnUrl":"https://shop.example/r"}"#)
            _ = try await e2e.post("/v1/payouts", json: #"{"mrn":"P-int","amount":500,"bankName":"b","accountName":"a","accountNumber":"1"}"#)
            let wrongOrigin = try await e2e.callback("deposit", depositCallbackForm(mrn: "D-int", amount: "100.50", originAmount: "999"))
            #expect(wrongOrigin.status == 400)
            let wrongPayout = try await e2e.callback("payout", payoutCallbackForm(mrn: "P-int", amount: "600"))
            #expect(wrongPayout.status == 400)
            let reasons = try await e2e.server.ledger.rejections(limit: 10).map(\.reason)
            #expect(reasons.filter { $0 == "amount_mismatch" }.count == 2)
            // Paid a different amount than ordered: accepted, both reported.
            #expect(try await e2e.callback("deposit", depositCallbackForm(mrn: "D-int", amount: "99.98", originAmount: "100.50")).bodyText == "success")
            #expect(await eventually { e2e.webhookBodies().count == 1 })
            let data = try #require(e2e.webhookBodies().first?["data"] as? [String: Any])
            #expect(data["amount"] as? String == "99.98" && data["originAmount"] as? String == "100.50" && data["amountMismatch"] as? Bool == true)
            #expect(try await e2e.callback("payout", payoutCallbackForm(mrn: "P-int", amount: "500.00")).bodyText == "success", "500.00 is 500")
        }
        try await withSidecar(settings: ["PAYSIDECAR_UNKNOWN_ORDER_CALLBACKS": "reject"]) { (e2e: E2E) async throws in
            let unknown = try await e2e.callback("payout", payoutCallbackForm(mrn: "P-stranger"))
            #expect(unknown.status == 400)
            #expect(try await e2e.server.ledger.rejections(limit: 1).first?.reason == "unknown_order")
            #expect(try await e2e.allEvents().isEmpty)
        }
    }
}

@Suite("SQLite ledger")
struct LedgerTests {
    func ledger() throws -> SQLiteLedger {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ledger-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return try SQLiteLedger(path: folder.appendingPathComponent("l.db").path)
    }

    func settlement(_ mrn: String, succeeded: Bool, at: Millis) -> Settlement {
        Settlement(kind: "payout", mrn: mrn, succeeded: succeeded, source: "query", eventType: "payout.\(succeeded ? "succeeded" : "failed")",
                   paidAmount: nil, orderAmount: "1", rawBody: nil, sourceAddress: nil, at: at) { _ in "{}" }
    }

    /// A write that inserts the order P-doomed, then fails: it must throw (and, the callers check, leave nothing).
    func failingWrite(_ l: SQLiteLedger, durable: Bool) async {
        do {
            _ = try await l.writes.write(durable: durable) { db -> Int in
                try db.execute(sql: "INSERT INTO orders (kind, mrn, amount, state, created_at, updated_at) VALUES ('payout', 'P-doomed', '1', 'pending', 1, 1)")
                try db.execute(sql: "INSERT INTO no_such_table VALUES (1)")
                return 0
            }
            Issue.record("the failing write succeeded")
        } catch {}
    }

    @Test("group commit: concurrent settlements share commits, each answered after its own; a failing write rolls back only itself")
    func groupCommit() async throws {
        let l = try ledger()
        let count = 300
        let outcomes = try await withThrowingTaskGroup(of: SettlementOutcome.self) { group in
            for n in 0..<count {
                group.addTask { try await l.apply(self.settlement("P-group-\(n)", succeeded: true, at: 1), eventID: "evt_group_\(n)") }
            }
            group.addTask {
                // A write that fails inside the same batches: only its own savepoint is rolled back.
                await self.failingWrite(l, durable: true)
                return .duplicate
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes.filter { if case .emitted = $0 { true } else { false } }.count == count)
        #expect(try await l.events(EventQuery(limit: 1000)).count == count, "every settlement's event is stored")
        #expect(try await l.order(kind: "payout", mrn: "P-doomed") == nil, "the failed write left nothing")
        #expect(l.writes.commits < count, "\(l.writes.commits) commits for \(count) writes: grouped")
    }

    @Test("a lone journal write commits on the caller's thread; a durable one on the writer queue; a failing one rolls back and throws")
    func inlineWrite() async throws {
        let l = try ledger()
        // No suspension between reading the thread and the write's work unless the write hands off.
        let caller = UInt(pthread_self())
        let inline = try await l.writes.write(durable: false) { db -> UInt in
            try db.execute(sql: "INSERT INTO orders (kind, mrn, amount, state, created_at, updated_at) VALUES ('payout', 'P-inline', '1', 'pending', 1, 1)")
            return UInt(pthread_self())
        }
        #expect(inline == caller, "committed where it was called")
        #expect(try await l.order(kind: "payout", mrn: "P-inline") != nil)
        let before = UInt(pthread_self())
        let durable = try await l.writes.write(durable: true) { _ in UInt(pthread_self()) }
        #expect(durable != before, "a durable commit waits for the disk on the database's own queue")
        await failingWrite(l, durable: false)
        #expect(try await l.order(kind: "payout", mrn: "P-doomed") == nil, "the failed write left nothing")
        #expect(try await l.beginOrder(OrderRecord(kind: "payout", mrn: "P-after", amount: "1", channelId: nil, notifyUrl: nil, state: .pending, createdAt: 1, updatedAt: 1)) == .inserted,
                "the writer is free again")
    }

    @Test("a contradicting outcome is recorded and flagged, never overwritten")
    func contradiction() async throws {
        let l = try ledger()
        #expect(try await l.beginOrder(OrderRecord(kind: "payout", mrn: "P1", amount: "1", channelId: nil, notifyUrl: nil, state: .pending, createdAt: 1, updatedAt: 1)) == .inserted)
        guard case .emitted = try await l.apply(settlement("P1", succeeded: true, at: 2), eventID: "evt_1") else { Issue.record("not emitted"); return }
        #expect(try await l.apply(settlement("P1", succeeded: true, at: 3), eventID: "evt_2") == .duplicate)
        #expect(try await l.apply(settlement("P1", succeeded: false, at: 4), eventID: "evt_3") == .contradiction(existing: .succeeded))
        let order = try #require(try await l.order(kind: "payout", mrn: "P1"))
        #expect(order.state == .succeeded)
        #expect(order.flag?.contains("failed") == true)
        #expect(try await l.events(EventQuery()).map(\.id) == ["evt_1"])
    }

    @Test("a create left `sending` by a process that died is `unknown` and due for a query when the database is opened again")
    func interruptedCreates() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ledger-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("l.db").path
        do {
            let first = try SQLiteLedger(path: path)
            _ = try await first.beginOrder(OrderRecord(kind: "payout", mrn: "P-crash", amount: "1", channelId: nil, notifyUrl: nil, state: .sending, createdAt: 1, updatedAt: 1))
            #expect(throws: LedgerError.self) { try SQLiteLedger(path: path) }
        }
        let second = try SQLiteLedger(path: path)
        let order = try #require(try await second.order(kind: "payout", mrn: "P-crash"))
        #expect(order.state == .unknown)
        #expect(order.gatewayCode == "interrupted")
        #expect(try await second.ordersToReconcile(now: Int64(Date().timeIntervalSince1970 * 1000) + 1, limit: 10).map(\.mrn) == ["P-crash"])
    }

    @Test("pruning removes old settled or refused orders, never an unsettled one")
    func prune() async throws {
        let l = try ledger()
        for (mrn, state) in [("old-settled", OrderState.pending), ("old-pending", .pending), ("old-unknown", .unknown), ("old-rejected", .rejected)] {
            _ = try await l.beginOrder(OrderRecord(kind: "payout", mrn: mrn, amount: "1", channelId: nil, notifyUrl: nil, state: state, createdAt: 1, updatedAt: 1))
        }
        _ = try await l.apply(settlement("old-settled", succeeded: true, at: 5), eventID: "evt_p")
        _ = try await l.beginOrder(OrderRecord(kind: "payout", mrn: "new-rejected", amount: "1", channelId: nil, notifyUrl: nil, state: .rejected, createdAt: 1000, updatedAt: 1000))
        #expect(try await l.prune(before: 100) == 2)
        #expect(try await l.order(kind: "payout", mrn: "old-settled") == nil)
        #expect(try await l.order(kind: "payout", mrn: "old-rejected") == nil)
        #expect(try await l.order(kind: "payout", mrn: "old-pending") != nil)
        #expect(try await l.order(kind: "payout", mrn: "old-unknown") != nil)
        #expect(try await l.order(kind: "payout", mrn: "new-rejected") != nil)
    }
}
