import CurlHTTP
import Foundation
import GatewaySimulator
import Testing

let payoutBody = #"{"mrn":"P-err","amount":100,"bankName":"ICBC","accountName":"Li Si","accountNumber":"1234"}"#
let depositBody = #"{"mrn":"D-err","amount":"100","channelId":1,"returnUrl":"https://shop.example/r"}"#

@Suite("Gateway failures and refusals map to problems")
struct ErrorMappingTests {
    @Test("payout codes: invalid_data 422, mrn_duplication 409, insufficient_balance 422, sign_error and object_not_found 502")
    func payoutCodes() async throws {
        try await withSidecar(simulator: { $0.balanceFen = 150 * 100 }) { (e2e: E2E) async throws in
            #expect(try await e2e.post("/v1/payouts", json: payoutBody).status == 202)
            // An mrn the gateway already has but this sidecar's journal does not (another system used it).
            try await e2e.addFault(#"{"path":"/api/Payouts/Create","kind":"answer","value":{"error":"mrn_duplication","errorMessage":"used"},"count":1}"#)
            let duplicate = try await e2e.post("/v1/payouts", json: payoutBody.replacingOccurrences(of: "P-err", with: "P-elsewhere"))
            #expect(duplicate.status == 409)
            #expect(try object(duplicate)["code"] as? String == "mrn_duplication")
            let poor = try await e2e.post("/v1/payouts", json: payoutBody.replacingOccurrences(of: "P-err", with: "P-poor"))
            #expect(poor.status == 422)
            #expect(try object(poor)["code"] as? String == "insufficient_balance")
        }
        try await withSidecar(settings: ["PAYSIDECAR_SECRET_KEY": "not-the-merchant-secret"]) { (e2e: E2E) async throws in
            let response = try await e2e.post("/v1/payouts", json: payoutBody)
            #expect(response.status == 502)
            #expect(try object(response)["code"] as? String == "sign_error")
            let deposit = try await e2e.post("/v1/deposits", json: depositBody)
            #expect(deposit.status == 502)
            #expect(try object(deposit)["code"] as? String == "sign_error")
            let query = try await e2e.get("/v1/deposits/D-x")
            #expect(query.status == 502)
            #expect(try object(query)["code"] as? String == "sign_error")
        }
        try await withSidecar(settings: ["PAYSIDECAR_APP_KEY": "unknown_merchant"]) { (e2e: E2E) async throws in
            let response = try await e2e.post("/v1/payouts", json: payoutBody)
            #expect(response.status == 502)
            #expect(try object(response)["code"] as? String == "object_not_found")
        }
    }

    @Test("invalid_data from the gateway is 422; a code the gateway never documented is kept, is 502 and leaves the order unknown")
    func invalidDataAndUnknownCodes() async throws {
        try await withSidecar { (e2e: E2E) async throws in
            try await e2e.addFault(#"{"path":"/api/Payouts/Create","kind":"answer","value":{"error":"invalid_data","errorMessage":"bank not supported"},"count":1}"#)
            let invalid = try await e2e.post("/v1/payouts", json: payoutBody)
            #expect(invalid.status == 422)
            #expect(try object(invalid)["code"] as? String == "invalid_data")
            #expect((try object(invalid)["detail"] as? String)?.contains("bank not supported") == true)

            try await e2e.addFault(#"{"path":"/api/Payouts/Create","kind":"answer","value":{"error":"rate_limited"},"count":1}"#)
            let odd = try await e2e.post("/v1/payouts", json: payoutBody.replacingOccurrences(of: "P-err", with: "P-odd"))
            #expect(odd.status == 502)
            #expect(try object(odd)["code"] as? String == "rate_limited")
            #expect(try object(odd)["orderStatus"] as? String == "unknown", "an undocumented answer may hide an order that exists")

            try await e2e.addFault(#"{"path":"/api/Pay/Create","kind":"answer","value":{"Success":false,"ErrorMsg":"channel closed for maintenance"},"count":1}"#)
            let refused = try await e2e.post("/v1/deposits", json: depositBody)
            #expect(refused.status == 502)
            #expect(try object(refused)["code"] as? String == "gateway_rejected")
            #expect(try object(refused)["orderStatus"] as? String == "unknown")
            #expect((try object(refused)["detail"] as? String)?.contains("channel closed") == true)
        }
    }

    @Test("gateway down: 502 gateway_unavailable, and no orderStatus since nothing was sent")
    func gatewayDown() async throws {
        try await withSidecar(settings: ["PAYSIDECAR_GATEWAY_URL": "http://127.0.0.1:1"]) { (e2e: E2E) async throws in
            let response = try await e2e.post("/v1/payouts", json: payoutBody)
            #expect(response.status == 502)
            let problem = try object(response)
            #expect(problem["code"] as? String == "gateway_unavailable")
            #expect(problem["orderStatus"] == nil)
            #expect(problem["status"] as? Int == 502)
        }
    }

    @Test("slow past PAYSIDECAR_GATEWAY_TIMEOUT: 504 gateway_timeout, orderStatus unknown on creates")
    func timeout() async throws {
        try await withSidecar(settings: ["PAYSIDECAR_GATEWAY_TIMEOUT": "300ms"]) { (e2e: E2E) async throws in
            try await e2e.addFault(#"{"path":"/api/Payouts/Create","kind":"delay","value":"2s"}"#)
            try await e2e.addFault(#"{"path":"/api/Pay/Create","kind":"delay","value":"2s"}"#)
            try await e2e.addFault(#"{"path":"/api/Payouts/Query","kind":"delay","value":"2s"}"#)
            for (path, body) in [("/v1/payouts", payoutBody), ("/v1/deposits", depositBody)] {
                let response = try await e2e.post(path, json: body)
                #expect(response.status == 504)
                let problem = try object(response)
                #expect(problem["code"] as? String == "gateway_timeout")
                #expect(problem["orderStatus"] as? String == "unknown")
                #expect(problem["status"] as? Int == 504)
            }
            let query = try await e2e.get("/v1/payouts/P-unseen")
            #expect(query.status == 504)
            #expect(try object(query)["orderStatus"] == nil, "a query has no order outcome to be unknown")
            // A journaled order still answers, from the journal, saying the gateway did not.
            try await e2e.addFault(#"{"path":"/api/Payouts/Query","kind":"delay","value":"2s"}"#)
            let journaled = try object(try await e2e.get("/v1/payouts/P-err"))
            #expect(journaled["status"] as? String == "unknown")
            #expect((journaled["gatewayError"] as? String)?.contains("timeout") == true)
            #expect((journaled["journal"] as? [String: Any])?["state"] as? String == "unknown")
        }
    }

    @Test("connection dropped after sending: 502 gateway_unavailable with orderStatus unknown, sent exactly once")
    func dropped() async throws {
        try await withSidecar { (e2e: E2E) async throws in
            // A first call opens a connection the failing one reuses.
            _ = try await e2e.get("/v1/payouts/P-warm")
            try await e2e.addFault(#"{"path":"/api/Payouts/Create","kind":"drop","count":1}"#)
            let response = try await e2e.post("/v1/payouts", json: payoutBody)
            #expect(response.status == 502)
            let problem = try object(response)
            #expect(problem["code"] as? String == "gateway_unavailable")
            #expect(problem["orderStatus"] as? String == "unknown")
            let creates = try await e2e.gatewayRequests().filter { ($0["path"] as? String) == "/api/Payouts/Create" }
            #expect(creates.count == 1, "never resent behind the caller's back")
        }
    }

    @Test("garbage or a 5xx from the gateway")
    func badAnswers() async throws {
        try await withSidecar { (e2e: E2E) async throws in
            try await e2e.addFault(#"{"path":"/api/Payouts/Create","kind":"garbage","count":1}"#)
            let garbage = try await e2e.post("/v1/payouts", json: payoutBody)
            #expect(garbage.status == 502)
            #expect(try object(garbage)["code"] as? String == "gateway_bad_response")
            #expect(try object(garbage)["orderStatus"] as? String == "unknown")

            try await e2e.addFault(#"{"path":"/api/Pay/Create","kind":"status","value":503,"count":1}"#)
            let unavailable = try await e2e.post("/v1/deposits", json: depositBody)
            #expect(unavailable.status == 502)
            #expect(try object(unavailable)["code"] as? String == "gateway_unavailable")
            #expect(try object(unavailable)["orderStatus"] as? String == "unknown")

            try await e2e.addFault(#"{"path":"/api/Payments/Query","kind":"garbage","count":1}"#)
            let query = try await e2e.get("/v1/deposits/D-unseen")
            #expect(query.status == 502)
            #expect(try object(query)["code"] as? String == "gateway_bad_response")
        }
    }

    @Test("a deposit refused by the gateway maps by the code its message starts with")
    func depositRefusal() async throws {
        try await withSidecar { (e2e: E2E) async throws in
            try await e2e.addFault(#"{"path":"/api/Pay/Create","kind":"answer","value":{"success":false,"errorMsg":"mrn_duplication: mrn was used before"},"count":1}"#)
            let again = try await e2e.post("/v1/deposits", json: depositBody)
            #expect(again.status == 409)
            #expect(try object(again)["code"] as? String == "mrn_duplication")
        }
    }
}
