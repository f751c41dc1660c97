import CurlHTTP
import Foundation
import GRDB
import Ledger
import Sidecar
import TestSupport
import Testing

/// Callbacks from the simulator go nowhere, so only the reconciler can learn outcomes.
let noCallbacks = ["PAYSIDECAR_PUBLIC_URL": "http://127.0.0.1:1", "PAYSIDECAR_RECONCILE_AFTER": "200ms"]

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
            // A retry does not re-send blindly: it gets the unknown outcome again (504) or, when the reconciler has
            // meanwhile found the order at the gateway (a loaded machine, a slower database), its pending state (202).
            #expect(again.status == 504 || again.status == 202, "\(again.status): a retry does not re-send blindly")
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

    @Test("an unknown payout the gateway never got is re-sent with the same mrn once not-found answers span PAYSIDECAR_RESEND_AFTER, and paid once")
    func unknownPayoutResent() async throws {
        try await withSidecar(settings: noCallbacks.merging(["PAYSIDECAR_RESEND_AFTER": "1s"]) { $1 }) { (e2e: E2E) async throws in
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
            let paid = try #require(byMrn["D-q-paid"]?["data"] as? [String: Any])
            #expect(paid["source"] as? String == "query")
            // A query carries no amount: the event says so instead of reporting the ordered amount as paid.
            #expect(paid["amount"] is NSNull && paid["amountConfirmed"] as? Bool == false && paid["originAmount"] as? String == "50")
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

    @Test("integrity: a validly signed callback whose amounts differ is stored, answered success and flagged; unknown orders per setting")
    func integrity() async throws {
        try await withSidecar { (e2e: E2E) async throws in
            _ = try await e2e.post("/v1/deposits", json: #"{"mrn":"D-int","amount":"100.50","channelId":2,"returnUrl":"https://shop.example/r"}"#)
            _ = try await e2e.post("/v1/payouts", json: #"{"mrn":"P-int","amount":500,"bankName":"b","accountName":"a","accountNumber":"1"}"#)
            #expect(try await e2e.callback("payout", payoutCallbackForm(mrn: "P-int", amount: "5000")).bodyText == "success", "stored, so the gateway stops retrying")
            #expect(try await e2e.callback("deposit", depositCallbackForm(mrn: "D-int", amount: "99.98", originAmount: "100.50")).bodyText == "success")
            #expect(await eventually { e2e.webhookBodies().count == 4 })
            let types = e2e.webhookBodies().compactMap { $0["type"] as? String }.sorted()
            #expect(types == ["deposit.flagged", "deposit.succeeded", "payout.flagged", "payout.succeeded"])
            for body in e2e.webhookBodies() {
                let data = try #require(body["data"] as? [String: Any])
                #expect(data["flag"] as? String == "amount_mismatch", "\(body)")
            }
            let payout = try #require(e2e.webhookBodies().first { $0["type"] as? String == "payout.succeeded" }?["data"] as? [String: Any])
            #expect(payout["amount"] as? String == "5000" && payout["orderAmount"] as? String == "500", "the reported amount is kept, not replaced by the ordered one")
            let journal = try #require(try object(try await e2e.get("/v1/payouts/P-int"))["journal"] as? [String: Any])
            #expect(journal["flag"] as? String == "amount_mismatch")
            #expect(journal["paidAmount"] as? String == "5000")
            #expect(try await e2e.callback("payout", payoutCallbackForm(mrn: "P-int", amount: "5000")).bodyText == "success")
            try await Task.sleep(for: .milliseconds(300))
            #expect(e2e.webhookBodies().count == 4, "the same callback again is a duplicate: no new flag")
        }
        try await withSidecar(settings: ["PAYSIDECAR_UNKNOWN_ORDER_CALLBACKS": "reject"]) { (e2e: E2E) async throws in
            let unknown = try await e2e.callback("payout", payoutCallbackForm(mrn: "P-stranger"))
            #expect(unknown.status == 400)
            #expect(try await e2e.server.ledger.rejections(limit: 1).first?.reason == "unknown_order")
            #expect(try await e2e.allEvents().isEmpty)
        }
    }
}
