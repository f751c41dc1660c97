import CurlHTTP
import Foundation
import GatewaySimulator
import TestSupport
import Testing

@Suite("Gateway simulator over HTTP")
struct SimulatorTests {
    @Test("deposit via the web API: created, cashier page served, paid by the cashier's button, queried")
    func depositAPIFlow() async throws {
        try await withSimulator { sim in
            let created = try await sim.createDeposit(mrn: "D-api-1")
            let answer = try jsonObject(created)
            #expect(answer["success"] as? Bool == true)
            let payUrl = try #require(answer["payUrl"] as? String)
            #expect(payUrl.hasPrefix("/api/Pay?id="))
            #expect(payUrl.hasSuffix("&channel=2"))

            let query0 = try await sim.query("deposit", mrn: "D-api-1")
            #expect(query0.bodyText == #"{"error":"success","result":{"Mrn":"D-api-1","status":0}}"#)

            let cashier = try await sim.get(payUrl)
            #expect(cashier.status == 200)
            #expect(cashier.headers["content-type"]?.hasPrefix("text/html") == true)
            #expect(cashier.bodyText.contains("D-api-1"))
            #expect(cashier.bodyText.contains("¥100.50"))
            let action = try #require(cashier.bodyText.range(of: #"action="(/_sim/cashier/[^"]+/pay)""#, options: .regularExpression))
            let payPath = String(cashier.bodyText[action].dropFirst("action=\"".count).dropLast())
            let paid = try await sim.post(payPath, form: "")
            #expect(paid.bodyText.contains("Payment received"))

            let query1 = try await sim.query("deposit", mrn: "D-api-1")
            #expect(try (jsonObject(query1)["result"] as? [String: Any])?["status"] as? Int == 1)
            #expect(await eventually { sim.receiver.requests.count == 1 })
        }
    }

    @Test("the deposit callback is signed as documented, carries what was paid and the original amount text")
    func depositCallbackContents() async throws {
        try await withSimulator { sim in
            _ = try await sim.createDeposit(mrn: "D-cb-1", amount: "100.50")
            let paid = try await sim.post("/_sim/deposits/D-cb-1/pay", json: #"{"amount":"99.98"}"#)
            #expect(paid.status == 200)
            #expect(await eventually { sim.receiver.requests.count == 1 })
            let request = try #require(sim.receiver.requests.first)
            #expect(request.method == "POST")
            #expect(request.uri == "/callbacks")
            #expect(request.header("content-type") == "application/x-www-form-urlencoded")
            let f = formDecode(request.bodyText)
            #expect(f["amount"] == "99.98")
            #expect(f["originAmount"] == "100.50")
            #expect(f["channel"] == "2")
            #expect(f["mrn"] == "D-cb-1")
            #expect(f["appKey"] == Merchant.appKey)
            let expected = independentSign(["amount", "appKey", "channel", "mrn", "originAmount"].map { ($0, f[$0]!) })
            #expect(f["sign"] == expected)
            let log = try jsonArray(try await sim.get("/_sim/callbacks"))
            #expect(log.count == 1 && log.first?["accepted"] as? Bool == true)
        }
    }

    @Test("deposit create refusals: sign_error, object_not_found, invalid_data, mrn_duplication")
    func depositRefusals() async throws {
        try await withSimulator { sim in
            func errorMsg(_ r: CurlResponse) throws -> String {
                let o = try jsonObject(r)
                #expect(o["success"] as? Bool == false)
                return o["errorMsg"] as? String ?? ""
            }
            #expect(try errorMsg(try await sim.createDeposit(mrn: "D-bad", sign: String(repeating: "0", count: 32))).hasPrefix("sign_error"))
            #expect(try errorMsg(try await sim.createDeposit(mrn: "D-bad", appKey: "someone_else")).hasPrefix("object_not_found"))
            #expect(try errorMsg(try await sim.createDeposit(mrn: "D-bad", channelId: 99)).hasPrefix("invalid_data"))
            #expect(try errorMsg(try await sim.post("/api/Pay/Create", json: "not json")).hasPrefix("invalid_data"))
            #expect(try errorMsg(try await sim.post("/api/Pay/Create", json: #"{"appKey":"mch_test"}"#)).hasPrefix("invalid_data"))
            // Signed over "100.50" but sent as 100.5: the characters differ, so the signature does not match.
            let fields = [("amount", "100.50"), ("appKey", Merchant.appKey), ("callbackUrl", sim.callbackURL), ("channelId", "2"), ("mrn", "D-chars"), ("returnUrl", "https://shop.example/return?o=1&lang=zh")]
            #expect(try errorMsg(try await sim.createDeposit(mrn: "D-chars", amount: "100.5", sign: independentSign(fields))).hasPrefix("sign_error"))
            #expect(try jsonObject(try await sim.createDeposit(mrn: "D-dup"))["success"] as? Bool == true)
            #expect(try errorMsg(try await sim.createDeposit(mrn: "D-dup")).hasPrefix("mrn_duplication"))
            let orders = try jsonArray(try await sim.get("/_sim/orders"))
            #expect(orders.map { $0["mrn"] as? String } == ["D-dup"])
        }
    }

    @Test("page mode: a browser's form post to /api/Pay renders the cashier; payer is unsigned and escaped")
    func pageMode() async throws {
        try await withSimulator { sim in
            let fields = [("amount", "88"), ("appKey", Merchant.appKey), ("callbackUrl", sim.callbackURL), ("channelId", "14"), ("mrn", "D-page-短"), ("returnUrl", "https://shop.example/r?x=1&y=2")]
            let form = formEncode(fields + [("sign", independentSign(fields)), ("payer", "<b>张三</b>")])
            let page = try await sim.post("/api/Pay", form: form)
            #expect(page.status == 200)
            #expect(page.bodyText.contains("D-page-短"))
            #expect(page.bodyText.contains("支付宝固码"))
            #expect(page.bodyText.contains("&lt;b&gt;张三&lt;/b&gt;"))
            #expect(!page.bodyText.contains("<b>张三"))
            let order = try jsonObject(try await sim.get("/_sim/orders/D-page-%E7%9F%AD"))
            #expect(order["payer"] as? String == "<b>张三</b>")
            #expect(order["amount"] as? String == "88")
            // The same form again (a browser refresh) shows the same order.
            #expect(try await sim.post("/api/Pay", form: form).status == 200)
            let bad = formEncode(fields + [("sign", independentSign(fields, secret: "wrong"))])
            let refused = try await sim.post("/api/Pay", form: bad)
            #expect(refused.status == 400)
            #expect(refused.bodyText.contains("sign_error"))
        }
    }

    @Test("payouts: accepted, balance held, completed with a signed callback; failed ones refunded without callback")
    func payoutFlow() async throws {
        try await withSimulator({ $0.balanceFen = 1000 * 100 }) { sim in
            #expect(try await sim.createPayout(mrn: "P-1", amount: "300").bodyText == #"{"error":"success","errorMessage":""}"#)
            #expect(try await sim.createPayout(mrn: "P-2", amount: "200").status == 200)
            #expect(try jsonObject(try await sim.get("/_sim/balance"))["amount"] as? String == "500.00")

            #expect(try await sim.post("/_sim/payouts/P-1/complete", json: "").status == 200)
            #expect(await eventually { sim.receiver.requests.count == 1 })
            let f = try #require(sim.callbacks.first)
            #expect(f["amount"] == "300" && f["mrn"] == "P-1" && f["appKey"] == Merchant.appKey)
            #expect(f["sign"] == independentSign([("amount", "300"), ("appKey", Merchant.appKey), ("mrn", "P-1")]))
            #expect(Set(f.keys) == ["amount", "appKey", "mrn", "sign"])

            #expect(try await sim.post("/_sim/payouts/P-2/fail", json: "").status == 200)
            #expect(try jsonObject(try await sim.get("/_sim/balance"))["amount"] as? String == "700.00")
            let q = try jsonObject(try await sim.query("payout", mrn: "P-2"))
            #expect((q["result"] as? [String: Any])?["status"] as? Int == 2)
            try await Task.sleep(for: .milliseconds(200))
            #expect(sim.receiver.requests.count == 1, "a failed payout sends no callback")
        }
    }

    @Test("all five payout error codes are reachable")
    func payoutErrorCodes() async throws {
        try await withSimulator({ $0.balanceFen = 100 * 100 }) { sim in
            func code(_ r: CurlResponse) throws -> String? { try jsonObject(r)["error"] as? String }
            #expect(try code(try await sim.createPayout(mrn: "P-x", amount: "10.5")) == "invalid_data")
            #expect(try code(try await sim.post("/api/Payouts/Create", json: "[]")) == "invalid_data")
            let badSign = String(repeating: "f", count: 32)
            let signError = try await sim.createPayout(mrn: "P-x", sign: badSign)
            #expect(try code(signError) == "sign_error")
            #expect(try code(try await sim.createPayout(mrn: "P-x", appKey: "nobody")) == "object_not_found")
            #expect(try code(try await sim.createPayout(mrn: "P-x", amount: "101")) == "insufficient_balance")
            #expect(try code(try await sim.createPayout(mrn: "P-x", amount: "100")) == "success")
            #expect(try code(try await sim.createPayout(mrn: "P-x", amount: "1")) == "mrn_duplication")
            #expect(try jsonObject(try await sim.put("/_sim/balance", json: #"{"amount": 5000}"#))["amount"] as? String == "5000.00")
            #expect(try code(try await sim.createPayout(mrn: "P-y", amount: "4000")) == "success")
        }
    }

    @Test("queries: sign_error, unknown mrn, wrong kind; callback=true sends a settled order's callback again")
    func queries() async throws {
        try await withSimulator { sim in
            #expect(try jsonObject(try await sim.query("deposit", mrn: "nope"))["error"] as? String == "object_not_found")
            #expect(try jsonObject(try await sim.query("deposit", mrn: "nope", sign: "bad"))["error"] as? String == "sign_error")
            _ = try await sim.createPayout(mrn: "P-q")
            #expect(try jsonObject(try await sim.query("deposit", mrn: "P-q"))["error"] as? String == "object_not_found")
            _ = try await sim.post("/_sim/payouts/P-q/complete", json: "")
            #expect(await eventually { sim.receiver.requests.count == 1 })
            _ = try await sim.query("payout", mrn: "P-q", callback: true)
            #expect(await eventually { sim.receiver.requests.count == 2 })
            #expect(sim.receiver.requests[0].bodyText == sim.receiver.requests[1].bodyText)
            let recorded = try jsonArray(try await sim.get("/_sim/requests"))
            #expect(recorded.contains { ($0["path"] as? String) == "/api/Payouts/Query" && ($0["query"] as? String)?.contains("callback=true") == true })
        }
    }

    @Test("callbacks are retried with backoff until the receiver answers 200 success")
    func callbackRetries() async throws {
        try await withSimulator { sim in
            sim.receiverAnswers.set([TestHTTPResponse(status: 500, text: "oops"), TestHTTPResponse(status: 200, text: "not the word")])
            _ = try await sim.createPayout(mrn: "P-retry")
            _ = try await sim.post("/_sim/payouts/P-retry/complete", json: "")
            #expect(await eventually { sim.receiver.requests.count == 3 })
            let log = try jsonArray(try await sim.get("/_sim/callbacks"))
            #expect(log.map { $0["attempt"] as? Int } == [1, 2, 3])
            #expect(log.map { $0["accepted"] as? Bool } == [false, false, true])
            #expect(log.first?["status"] as? Int == 500)
        }
    }

    @Test("callback faults: duplicate sends twice; bad_signature sends a wrong sign first, then the right one")
    func callbackFaults() async throws {
        try await withSimulator { sim in
            #expect(try await sim.post("/_sim/faults", json: #"{"path":"callback","kind":"duplicate","count":1}"#).status == 201)
            _ = try await sim.createPayout(mrn: "P-dup")
            _ = try await sim.post("/_sim/payouts/P-dup/complete", json: "")
            #expect(await eventually { sim.receiver.requests.count == 2 })
            #expect(sim.receiver.requests[0].bodyText == sim.receiver.requests[1].bodyText)

            sim.receiverAnswers.set([TestHTTPResponse(status: 400, text: "bad signature")])
            _ = try await sim.post("/_sim/faults", json: #"{"path":"callback","kind":"bad_signature","count":1}"#)
            _ = try await sim.createPayout(mrn: "P-badsig")
            _ = try await sim.post("/_sim/payouts/P-badsig/complete", json: "")
            #expect(await eventually { sim.receiver.requests.count == 4 })
            let good = independentSign([("amount", "500"), ("appKey", Merchant.appKey), ("mrn", "P-badsig")])
            #expect(sim.callbacks[2]["sign"] != good)
            #expect(sim.callbacks[3]["sign"] == good)
            #expect(try jsonArray(try await sim.get("/_sim/faults")).isEmpty, "count-limited faults are used up")
        }
    }

    @Test("HTTP faults: status, delay past the client's timeout, dropped connection, garbage")
    func httpFaults() async throws {
        try await withSimulator { sim in
            _ = try await sim.post("/_sim/faults", json: #"{"path":"/api/Payouts/Create","kind":"status","value":503,"count":1}"#)
            let unavailable = try await sim.createPayout(mrn: "P-503")
            #expect(unavailable.status == 503)
            #expect(try await sim.get("/_sim/orders/P-503").status == 404, "a 5xx fault processes nothing")

            _ = try await sim.post("/_sim/faults", json: #"{"path":"/api/Payouts/Create","kind":"delay","value":"2s","count":1}"#)
            let timeout = await #expect(throws: CurlError.self) {
                try await sim.client.execute(CurlRequest(
                    method: "POST", url: sim.base + "/api/Payouts/Create", headers: [("Content-Type", "application/json")],
                    body: Array(#"{"mrn":"ignored"}"#.utf8), timeout: .milliseconds(300)
                ))
            }
            #expect(timeout?.kind == .timedOut)

            _ = try await sim.post("/_sim/faults", json: #"{"path":"/api/Payouts/Create","kind":"drop","count":1}"#)
            let dropped = await #expect(throws: CurlError.self) { try await sim.createPayout(mrn: "P-drop") }
            #expect(dropped?.kind == .connectionLost)
            #expect(dropped?.requestSent == true)
            #expect(try await sim.get("/_sim/orders/P-drop").status == 200, "the dropped request was processed: outcome unknown to the caller")

            _ = try await sim.post("/_sim/faults", json: #"{"path":"/api/Payments/Query","kind":"garbage"}"#)
            for _ in 0..<2 {
                let garbage = try await sim.query("deposit", mrn: "x")
                #expect(garbage.status == 200)
                #expect((try? JSONSerialization.jsonObject(with: Data(garbage.body))) == nil)
            }
            #expect(try await sim.delete("/_sim/faults").status == 204)
            #expect(try jsonObject(try await sim.query("deposit", mrn: "x"))["error"] as? String == "object_not_found")
        }
    }

    @Test("control API refuses what it cannot do, clearly")
    func controlErrors() async throws {
        try await withSimulator { sim in
            #expect(try await sim.post("/_sim/deposits/none/pay", json: "").status == 404)
            _ = try await sim.createDeposit(mrn: "D-ctl")
            #expect(try await sim.post("/_sim/payouts/D-ctl/complete", json: "").status == 404)
            #expect(try await sim.post("/_sim/deposits/D-ctl/pay", json: #"{"amount":"-1"}"#).status == 400)
            #expect(try await sim.post("/_sim/deposits/D-ctl/fail", json: "").status == 200)
            let again = try await sim.post("/_sim/deposits/D-ctl/pay", json: "")
            #expect(again.status == 409)
            #expect(try jsonObject(again)["error"] as? String == "already_settled")
            #expect(try await sim.post("/_sim/faults", json: #"{"path":"/nope","kind":"drop"}"#).status == 400)
            #expect(try await sim.post("/_sim/faults", json: #"{"path":"callback","kind":"garbage"}"#).status == 400)
            #expect(try await sim.post("/_sim/faults", json: #"{"path":"/api/Payouts/Query","kind":"hold","value":"1s"}"#).status == 400, "hold applies to creates only")
            #expect(try await sim.post("/_sim/faults", json: #"{"path":"/api/Payouts/Create","kind":"hold"}"#).status == 400, "hold needs a duration")
            #expect(try await sim.post("/_sim/faults", json: #"{"path":"/api/Pay/Create","kind":"processed_answer"}"#).status == 400)
            #expect(try await sim.post("/_sim/faults", json: #"{"path":"/api/Pay/Create","kind":"delay"}"#).status == 400)
            #expect(try await sim.put("/_sim/balance", json: #"{"amount":"lots"}"#).status == 400)
            try await Task.sleep(for: .milliseconds(100))
            #expect(sim.receiver.requests.isEmpty, "a failed deposit sends no callback")
        }
    }

    @Test("auto-settle pays every new order after the delay and calls back")
    func autoSettle() async throws {
        try await withSimulator({ $0.autoSettle = .milliseconds(100) }) { sim in
            _ = try await sim.createDeposit(mrn: "D-auto")
            _ = try await sim.createPayout(mrn: "P-auto")
            #expect(await eventually { sim.receiver.requests.count == 2 })
            #expect(Set(sim.callbacks.compactMap { $0["mrn"] }) == ["D-auto", "P-auto"])
            #expect(try jsonObject(try await sim.get("/_sim/orders/D-auto"))["status"] as? Int == 1)
        }
    }

    @Test("hold: a held payout is invisible to queries and to the mrn check; a second create meanwhile is booked too, and debited")
    func holdBooksTwice() async throws {
        try await withSimulator({ $0.balanceFen = 10_000 * 100 }) { sim in
            // Long enough for the four calls below to fit in it on a loaded machine.
            #expect(try await sim.post("/_sim/faults", json: #"{"path":"/api/Payouts/Create","kind":"hold","value":"3s","count":1}"#).status == 201)
            async let held = sim.createPayout(mrn: "P-hold", amount: "300")
            try await Task.sleep(for: .milliseconds(200))
            #expect(try jsonObject(try await sim.query("payout", mrn: "P-hold"))["error"] as? String == "object_not_found", "still being processed: not found")
            #expect(try await sim.get("/_sim/orders/P-hold").status == 404)
            let second = try await sim.createPayout(mrn: "P-hold", amount: "300")
            #expect(try jsonObject(second)["error"] as? String == "success", "the mrn check does not see the held create")
            #expect(try jsonObject(try await held)["error"] as? String == "success", "answered once the hold is over")
            let order = try jsonObject(try await sim.get("/_sim/orders/P-hold"))
            #expect(order["bookings"] as? Int == 2)
            #expect(try jsonObject(try await sim.get("/_sim/balance"))["amount"] as? String == "9400.00", "debited per booking")
            #expect(try jsonObject(try await sim.createPayout(mrn: "P-hold", amount: "300"))["error"] as? String == "mrn_duplication", "visible now")
            let listed = try jsonArray(try await sim.get("/_sim/orders"))
            #expect(listed.first { $0["mrn"] as? String == "P-hold" }?["bookings"] as? Int == 2)
            #expect(try await sim.post("/_sim/payouts/P-hold/fail", json: "").status == 200)
            #expect(try jsonObject(try await sim.get("/_sim/balance"))["amount"] as? String == "10000.00", "every booking refunded")
            let requests = try jsonArray(try await sim.get("/_sim/requests")).filter { $0["path"] as? String == "/api/Payouts/Create" }
            #expect(requests.map { $0["fault"] as? String } == ["hold 3s", nil, nil])
        }
    }

    @Test("hold on a deposit create: not found until the hold is over, then one booking")
    func holdDeposit() async throws {
        try await withSimulator { sim in
            _ = try await sim.post("/_sim/faults", json: #"{"path":"/api/Pay/Create","kind":"hold","value":2000,"count":1}"#)
            async let held = sim.createDeposit(mrn: "D-hold")
            try await Task.sleep(for: .milliseconds(150))
            #expect(try jsonObject(try await sim.query("deposit", mrn: "D-hold"))["error"] as? String == "object_not_found")
            #expect(try jsonObject(try await held)["success"] as? Bool == true)
            #expect(try jsonObject(try await sim.query("deposit", mrn: "D-hold"))["error"] as? String == "success")
            #expect(try jsonObject(try await sim.get("/_sim/orders/D-hold"))["bookings"] as? Int == 1)
        }
    }

    @Test("callback drop: the next callback is never sent nor retried; a query with callback=true sends it")
    func callbackDrop() async throws {
        try await withSimulator { sim in
            #expect(try await sim.post("/_sim/faults", json: #"{"path":"callback","kind":"drop","count":1}"#).status == 201)
            _ = try await sim.createPayout(mrn: "P-lost")
            #expect(try await sim.post("/_sim/payouts/P-lost/complete", json: "").status == 200)
            try await Task.sleep(for: .milliseconds(300))
            #expect(sim.receiver.requests.isEmpty, "dropped: nothing sent, no retry")
            let log = try jsonArray(try await sim.get("/_sim/callbacks"))
            #expect(log.count == 1 && log.first?["accepted"] as? Bool == false && (log.first?["error"] as? String)?.contains("dropped") == true)
            _ = try await sim.query("payout", mrn: "P-lost", callback: true)
            #expect(await eventually { sim.receiver.requests.count == 1 })
        }
    }

    @Test("processed_answer: the create is booked, yet answered with the fault's value (an undocumented refusal)")
    func processedAnswer() async throws {
        try await withSimulator { sim in
            _ = try await sim.post("/_sim/faults", json: #"{"path":"/api/Payouts/Create","kind":"processed_answer","value":{"error":"system_busy","errorMessage":"busy"},"count":1}"#)
            let answer = try await sim.createPayout(mrn: "P-busy")
            #expect(answer.bodyText == #"{"error":"system_busy","errorMessage":"busy"}"#)
            #expect(try jsonObject(try await sim.get("/_sim/orders/P-busy"))["status"] as? Int == 0, "booked all the same")
            _ = try await sim.post("/_sim/faults", json: #"{"path":"/api/Payouts/Create","kind":"answer","value":{"error":"system_busy"},"count":1}"#)
            _ = try await sim.createPayout(mrn: "P-busy-2")
            #expect(try await sim.get("/_sim/orders/P-busy-2").status == 404, "answer (unlike processed_answer) books nothing")
        }
    }
}
