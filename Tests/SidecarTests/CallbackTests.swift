import CurlHTTP
import Foundation
import GatewayProtocol
import Ledger
import Sidecar
import TestSupport
import Testing

@Suite("Callbacks in")
struct CallbackTests {
    @Test("a paid deposit: the simulator calls back, the sidecar answers success and emits deposit.succeeded once")
    func depositFlow() async throws {
        try await withSidecar { (e2e: E2E) async throws in
            let created = try await e2e.post("/v1/deposits", json: #"{"mrn":"D-cb-1","amount":"100.50","channelId":2,"returnUrl":"https://shop.example/r"}"#)
            #expect(created.status == 201)
            _ = try await e2e.client.execute(CurlRequest(method: "POST", url: e2e.gateway + "/_sim/deposits/D-cb-1/pay", body: Array(#"{"amount":"99.98"}"#.utf8)))
            // Paid another amount than ordered: settled, and flagged for a person.
            #expect(await eventually { e2e.receiver.requests.count == 2 })
            let log = try JSONSerialization.jsonObject(with: Data(try await e2e.client.execute(CurlRequest(url: e2e.gateway + "/_sim/callbacks")).body)) as? [[String: Any]]
            #expect(log?.first?["accepted"] as? Bool == true, "the sidecar answered 200 success")
            let bodies = e2e.receiver.requests.compactMap { try? JSONSerialization.jsonObject(with: Data($0.body)) as? [String: Any] }
            let body = try #require(bodies.first { $0["type"] as? String == "deposit.succeeded" })
            let flagged = try #require(bodies.first { $0["type"] as? String == "deposit.flagged" }?["data"] as? [String: Any])
            #expect(flagged["flag"] as? String == "amount_mismatch" && flagged["reportedAmount"] as? String == "99.98")
            let data = try #require(body["data"] as? [String: Any])
            #expect(data["mrn"] as? String == "D-cb-1")
            #expect(data["amount"] as? String == "99.98")
            #expect(data["originAmount"] as? String == "100.50")
            #expect(data["channelId"] as? Int == 2)
            #expect(data["source"] as? String == "callback")
            #expect(data["knownOrder"] as? Bool == true)
            #expect(data["amountMismatch"] as? Bool == true)
            #expect(data["amountConfirmed"] as? Bool == true)
            #expect(data["flag"] as? String == "amount_mismatch")
            #expect((body["timestamp"] as? String)?.hasSuffix("Z") == true)
            // The gateway calling back again (a query with callback=true) is a duplicate: nothing new.
            _ = try await e2e.get("/v1/deposits/D-cb-1?callback=true")
            #expect(await eventually {
                let attempts = try? JSONSerialization.jsonObject(with: Data(try await e2e.client.execute(CurlRequest(url: e2e.gateway + "/_sim/callbacks")).body)) as? [[String: Any]]
                return attempts?.count == 2 && attempts?.last?["accepted"] as? Bool == true
            })
            try await Task.sleep(for: .milliseconds(300))
            #expect(e2e.receiver.requests.count == 2)
            #expect(try await e2e.allEvents().count == 2)
        }
    }

    @Test("a completed payout emits payout.succeeded with the order's notifyUrl as target")
    func payoutFlowToNotifyURL() async throws {
        let other = try await TestHTTPServer.start { _ in TestHTTPResponse(status: 204) }
        try await withSidecar { (e2e: E2E) async throws in
            _ = try await e2e.post("/v1/payouts", json: #"{"mrn":"P-cb-1","amount":500,"bankName":"ICBC","accountName":"Li","accountNumber":"1","notifyUrl":"\#(other.baseURL)/mine"}"#)
            _ = try await e2e.client.execute(CurlRequest(method: "POST", url: e2e.gateway + "/_sim/payouts/P-cb-1/complete"))
            #expect(await eventually { other.requests.count == 1 })
            #expect(other.requests.first?.uri == "/mine")
            #expect(e2e.receiver.requests.isEmpty, "the default target got nothing")
            let event = try #require(try await e2e.allEvents().first)
            #expect(event["type"] as? String == "payout.succeeded")
            #expect(await eventually { (try? await e2e.event(event["id"] as! String))?["status"] as? String == "delivered" })
        }
        try await other.stop()
    }

    static let anotherOrdersSign = String(depositCallbackForm(mrn: "D-other").split(separator: "&").last!.dropFirst(5))

    @Test("each tampering is refused with 4xx and a short reason, recorded, and emits nothing", arguments: [
        ("amount", depositCallbackForm(mrn: "D-t", amount: "100.00").replacingOccurrences(of: "amount=100.00", with: "amount=999.00"), 401),
        ("mrn", depositCallbackForm(mrn: "D-t").replacingOccurrences(of: "mrn=D-t", with: "mrn=D-u"), 401),
        ("sign", depositCallbackForm(mrn: "D-t", sign: String(repeating: "0", count: 32)), 401),
        ("appKey", depositCallbackForm(mrn: "D-t", appKey: "someone_else"), 401),
        ("missing field", depositCallbackForm(mrn: "D-t").replacingOccurrences(of: "&channel=2", with: ""), 400),
        ("another order's signature", depositCallbackForm(mrn: "D-t", sign: anotherOrdersSign), 401),
        ("duplicated field", depositCallbackForm(mrn: "D-t") + "&amount=1", 400),
        ("not form encoding", "amount=%zz", 400),
    ] as [(String, String, Int)])
    func tampering(name: String, form: String, status: Int) async throws {
        try await withSidecar { (e2e: E2E) async throws in
            let response = try await e2e.callback("deposit", form)
            #expect(response.status == status, "\(name): \(response.bodyText)")
            #expect(response.headers["content-type"]?.hasPrefix("text/plain") == true)
            #expect(response.bodyText != "success" && !response.bodyText.isEmpty && response.bodyText.count < 100)
            let rejections = try await e2e.server.ledger.rejections(limit: 10)
            #expect(rejections.count == 1)
            #expect(rejections.first?.sourceAddress == "127.0.0.1")
            #expect(rejections.first?.kind == .deposit)
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await e2e.allEvents().isEmpty)
            #expect(e2e.receiver.requests.isEmpty)
        }
    }

    @Test("a payout callback signed correctly is accepted; with a tampered amount it is refused")
    func payoutCallbacks() async throws {
        try await withSidecar { (e2e: E2E) async throws in
            #expect(try await e2e.callback("payout", payoutCallbackForm(mrn: "P-x")).bodyText == "success")
            let forged = payoutCallbackForm(mrn: "P-y").replacingOccurrences(of: "amount=500", with: "amount=5000")
            #expect(try await e2e.callback("payout", forged).status == 401)
            // A deposit's signature layout on the payout route does not fit.
            #expect(try await e2e.callback("payout", depositCallbackForm(mrn: "P-z")).status == 401)
            #expect(await eventually { e2e.receiver.requests.count == 1 })
            let event = try #require(try await e2e.allEvents().first)
            // Never journaled by this sidecar: stored and told as a flag, never as a settlement.
            #expect((event["payload"] as? [String: Any])?["type"] as? String == "payout.flagged")
            let data = try #require((event["payload"] as? [String: Any])?["data"] as? [String: Any])
            #expect(data["flag"] as? String == "unknown_order")
            #expect(data["knownOrder"] as? Bool == false)
        }
    }

    @Test("a repeated callback for the same order answers success and emits nothing new")
    func duplicates() async throws {
        try await withSidecar { (e2e: E2E) async throws in
            let form = depositCallbackForm(mrn: "D-dup")
            for _ in 0..<3 { #expect(try await e2e.callback("deposit", form).bodyText == "success") }
            #expect(await eventually { e2e.receiver.requests.count == 1 })
            try await Task.sleep(for: .milliseconds(300))
            #expect(e2e.receiver.requests.count == 1)
            #expect(try await e2e.allEvents().count == 1)
        }
    }

    @Test("PAYSIDECAR_CALLBACK_ALLOWED_IPS: other sources are closed at accept; behind a trusted proxy they get 403 and are recorded")
    func allowlist() async throws {
        try await withSidecar(settings: ["PAYSIDECAR_CALLBACK_ALLOWED_IPS": "10.0.0.0/8,2001:db8::/32"]) { (e2e: E2E) async throws in
            await #expect(throws: CurlError.self) { try await e2e.callback("deposit", depositCallbackForm(mrn: "D-ip")) }
            #expect(try await e2e.server.ledger.rejections(limit: 5).isEmpty, "nothing written for a connection closed at accept")
            #expect(try await e2e.allEvents().isEmpty)
        }
        try await withSidecar(settings: ["PAYSIDECAR_CALLBACK_ALLOWED_IPS": "10.0.0.0/8", "PAYSIDECAR_TRUSTED_PROXIES": "127.0.0.1"]) { (e2e: E2E) async throws in
            let response = try await e2e.callback("deposit", depositCallbackForm(mrn: "D-ip"),
                                                  headers: [("Content-Type", "application/x-www-form-urlencoded"), ("X-Forwarded-For", "198.51.100.7")])
            #expect(response.status == 403)
            #expect(try await e2e.server.ledger.rejections(limit: 5).first?.reason == "address_not_allowed")
            #expect(try await e2e.allEvents().isEmpty)
        }
        try await withSidecar(settings: ["PAYSIDECAR_CALLBACK_ALLOWED_IPS": "127.0.0.0/8"]) { (e2e: E2E) async throws in
            #expect(try await e2e.callback("deposit", depositCallbackForm(mrn: "D-ip")).bodyText == "success")
        }
    }

    @Test("X-Forwarded-For counts only from a trusted proxy")
    func forwardedFor() async throws {
        let form = depositCallbackForm(mrn: "D-xff")
        let forwarded = [("Content-Type", "application/x-www-form-urlencoded"), ("X-Forwarded-For", "203.0.113.9")]
        try await withSidecar(settings: ["PAYSIDECAR_CALLBACK_ALLOWED_IPS": "203.0.113.0/24"]) { (e2e: E2E) async throws in
            _ = await #expect(throws: CurlError.self, "no trusted proxy: the header is ignored, the peer is refused at accept") {
                try await e2e.callback("deposit", form, headers: forwarded)
            }
        }
        try await withSidecar(settings: ["PAYSIDECAR_CALLBACK_ALLOWED_IPS": "203.0.113.0/24", "PAYSIDECAR_TRUSTED_PROXIES": "127.0.0.1"]) { (e2e: E2E) async throws in
            #expect(try await e2e.callback("deposit", form, headers: forwarded).bodyText == "success")
            let spoofed = [("Content-Type", "application/x-www-form-urlencoded"), ("X-Forwarded-For", "203.0.113.9, 198.51.100.1")]
            #expect(try await e2e.callback("deposit", form, headers: spoofed).status == 403, "the right-most untrusted hop counts")
        }
    }

    @Test("callback routes: POST and forms only, 16 KiB at most, absent from the internal listener")
    func routeRules() async throws {
        try await withSidecar { (e2e: E2E) async throws in
            let get = try await e2e.client.execute(CurlRequest(url: "\(e2e.callbackListener)/callbacks/deposit"))
            #expect(get.status == 405)
            #expect(get.headers["allow"] == "POST")
            #expect(try await e2e.callback("deposit", "{}", headers: [("Content-Type", "application/json")]).status == 415)
            #expect(try await e2e.callback("deposit", depositCallbackForm(mrn: "D-big") + "&pad=" + String(repeating: "x", count: 17_000)).status == 413)
            let onInternal = try await e2e.client.execute(CurlRequest(method: "POST", url: "\(e2e.api)/callbacks/deposit", headers: [("Content-Type", "application/x-www-form-urlencoded")], body: Array(depositCallbackForm(mrn: "D-int").utf8)))
            #expect(onInternal.status == 404)
            #expect(try await e2e.allEvents().isEmpty)
        }
    }
}
