import CurlHTTP
import Foundation
import Synchronization
import TestSupport
import Testing

@Suite("Internal API against the simulator")
struct InternalAPITests {
    @Test("POST /v1/deposits (api mode): the gateway receives every field, signed, amount with the caller's characters")
    func depositAPIMode() async throws {
        try await withSidecar { (e2e: E2E) async throws in
            let response = try await e2e.post("/v1/deposits", json: #"{"mrn":"D-e2e-1","amount":"100.50","channelId":2,"returnUrl":"https://shop.example/return?o=1&lang=zh","notifyUrl":"http://127.0.0.1:1/hooks"}"#)
            #expect(response.status == 201)
            let body = try object(response)
            #expect(body["mrn"] as? String == "D-e2e-1")
            #expect(body["status"] as? String == "pending")
            let payUrl = try #require(body["payUrl"] as? String)
            #expect(payUrl.hasPrefix(e2e.gateway + "/api/Pay?id="), "absolute on the gateway: \(payUrl)")
            #expect(try await e2e.client.execute(CurlRequest(url: payUrl)).bodyText.contains("D-e2e-1"), "the payUrl opens the cashier page")

            let received = try #require(try await e2e.gatewayRequests().first)
            #expect(received["path"] as? String == "/api/Pay/Create")
            let raw = try #require(received["body"] as? String)
            #expect(raw.contains(#""amount":100.50,"#), "a JSON number written with the caller's characters: \(raw)")
            #expect(raw.contains(#""channelId":2,"#))
            let sent = try #require(try JSONSerialization.jsonObject(with: Data(raw.utf8)) as? [String: Any])
            #expect(Set(sent.keys) == ["amount", "appKey", "callbackUrl", "channelId", "mrn", "returnUrl", "sign"], "notifyUrl stays inside")
            #expect(sent["appKey"] as? String == TestMerchant.appKey)
            #expect(sent["callbackUrl"] as? String == "\(e2e.callbackListener)/callbacks/deposit")
            #expect(sent["mrn"] as? String == "D-e2e-1")
            #expect(sent["returnUrl"] as? String == "https://shop.example/return?o=1&lang=zh")
            let expected = independentSign([
                ("amount", "100.50"), ("appKey", TestMerchant.appKey), ("callbackUrl", "\(e2e.callbackListener)/callbacks/deposit"),
                ("channelId", "2"), ("mrn", "D-e2e-1"), ("returnUrl", "https://shop.example/return?o=1&lang=zh"),
            ])
            #expect(sent["sign"] as? String == expected)
        }
    }

    @Test("amount given as a JSON number keeps its characters too", arguments: ["88.5", "88.50", "1", "0.01"])
    func amountNumberCharacters(amount: String) async throws {
        try await withSidecar { (e2e: E2E) async throws in
            let response = try await e2e.post("/v1/deposits", json: #"{"mrn":"D-num","amount":\#(amount),"channelId":"3","returnUrl":"https://shop.example/r"}"#)
            #expect(response.status == 201, "\(response.bodyText)")
            let raw = try #require(try await e2e.gatewayRequests().first?["body"] as? String)
            #expect(raw.contains(#""amount":\#(amount),"#), "\(raw)")
            let sent = try #require(try JSONSerialization.jsonObject(with: Data(raw.utf8)) as? [String: Any])
            #expect(sent["sign"] as? String == independentSign([
                ("amount", amount), ("appKey", TestMerchant.appKey), ("callbackUrl", "\(e2e.callbackListener)/callbacks/deposit"),
                ("channelId", "3"), ("mrn", "D-num"), ("returnUrl", "https://shop.example/r"),
            ]))
        }
    }

    @Test("POST /v1/deposits (page mode): a complete signed form and an escaped page; nothing is sent; a browser's post creates the order")
    func depositPageMode() async throws {
        try await withSidecar { (e2e: E2E) async throws in
            let payer = #"张三 <b>"&'"#
            let response = try await e2e.post("/v1/deposits", json: #"{"mrn":"D-page-1","amount":88,"channelId":1,"returnUrl":"https://shop.example/r?a=1&b=2","payer":"张三 <b>\"&'","mode":"page"}"#)
            #expect(response.status == 201)
            #expect(try await e2e.gatewayRequests().isEmpty, "page mode calls nothing")
            let body = try object(response)
            let form = try #require(body["form"] as? [String: Any])
            #expect(form["action"] as? String == e2e.gateway + "/api/Pay")
            #expect(form["method"] as? String == "POST")
            let fields = try #require(form["fields"] as? [String: String])
            #expect(Set(fields.keys) == ["amount", "appKey", "callbackUrl", "channelId", "mrn", "returnUrl", "sign", "payer"])
            #expect(fields["payer"] == payer)
            #expect(fields["sign"] == independentSign([
                ("amount", "88"), ("appKey", TestMerchant.appKey), ("callbackUrl", "\(e2e.callbackListener)/callbacks/deposit"),
                ("channelId", "1"), ("mrn", "D-page-1"), ("returnUrl", "https://shop.example/r?a=1&b=2"),
            ]), "payer is not signed")
            let html = try #require(body["html"] as? String)
            #expect(html.hasPrefix("<!doctype html>"))
            #expect(html.contains(#"<meta charset="utf-8">"#))
            #expect(html.contains("document.forms[0].submit()"))
            #expect(html.contains(#"value="张三 &lt;b&gt;&quot;&amp;&#39;""#))
            #expect(html.contains(#"value="https://shop.example/r?a=1&amp;b=2""#))
            #expect(!html.contains("<b>"))

            // Post the form the way a browser does: application/x-www-form-urlencoded, UTF-8.
            var allowed = CharacterSet.alphanumerics
            allowed.insert(charactersIn: "-._~")
            let encoded = fields.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: allowed)!)" }.joined(separator: "&")
            let page = try await e2e.client.execute(CurlRequest(method: "POST", url: e2e.gateway + "/api/Pay", headers: [("Content-Type", "application/x-www-form-urlencoded")], body: Array(encoded.utf8)))
            #expect(page.status == 200, "\(page.bodyText)")
            #expect(page.bodyText.contains("D-page-1"))
            let order = try object(try await e2e.client.execute(CurlRequest(url: e2e.gateway + "/_sim/orders/D-page-1")))
            #expect(order["payer"] as? String == payer)
            #expect(order["amount"] as? String == "88")
        }
    }

    @Test("POST /v1/payouts: 202, the gateway receives every field signed with the amount as a number")
    func payout() async throws {
        try await withSidecar { (e2e: E2E) async throws in
            let response = try await e2e.post("/v1/payouts", json: #"{"mrn":"P-e2e-1","amount":500,"bankName":"中国工商银行","accountName":"张三","accountNumber":"6222020200112233445"}"#)
            #expect(response.status == 202)
            #expect(try object(response)["status"] as? String == "pending")
            let received = try #require(try await e2e.gatewayRequests().first)
            #expect(received["path"] as? String == "/api/Payouts/Create")
            let raw = try #require(received["body"] as? String)
            #expect(raw.contains(#""amount":500,"#))
            let sent = try #require(try JSONSerialization.jsonObject(with: Data(raw.utf8)) as? [String: Any])
            #expect(sent["callbackUrl"] as? String == "\(e2e.callbackListener)/callbacks/payout")
            #expect(sent["bankName"] as? String == "中国工商银行")
            #expect(sent["sign"] as? String == independentSign([
                ("accountName", "张三"), ("accountNumber", "6222020200112233445"), ("amount", "500"), ("appKey", TestMerchant.appKey),
                ("bankName", "中国工商银行"), ("callbackUrl", "\(e2e.callbackListener)/callbacks/payout"), ("mrn", "P-e2e-1"),
            ]))
        }
    }

    @Test("GET /v1/deposits/{mrn} and /v1/payouts/{mrn}: the gateway's status in plain terms; callback=true passes through")
    func queries() async throws {
        try await withSidecar { (e2e: E2E) async throws in
            _ = try await e2e.post("/v1/deposits", json: #"{"mrn":"D-短-q","amount":"10","channelId":2,"returnUrl":"https://shop.example/r"}"#)
            let pending = try object(try await e2e.get("/v1/deposits/D-%E7%9F%AD-q"))
            #expect(pending["status"] as? String == "pending")
            #expect(pending["mrn"] as? String == "D-短-q")
            #expect(pending["gatewayStatus"] as? Int == 0)
            _ = try await e2e.client.execute(CurlRequest(method: "POST", url: e2e.gateway + "/_sim/deposits/D-%E7%9F%AD-q/pay"))
            #expect(try object(try await e2e.get("/v1/deposits/D-%E7%9F%AD-q?callback=true"))["status"] as? String == "succeeded")
            let queries = try await e2e.gatewayRequests().filter { ($0["path"] as? String) == "/api/Payments/Query" }
            let last = try #require(queries.last?["query"] as? String)
            #expect(last.hasSuffix("&callback=true"))
            #expect(last.contains("sign=\(independentSign([("appKey", TestMerchant.appKey), ("mrn", "D-短-q")]))"))

            _ = try await e2e.post("/v1/payouts", json: #"{"mrn":"P-q","amount":"20","bankName":"ICBC","accountName":"Li Si","accountNumber":"1234"}"#)
            _ = try await e2e.client.execute(CurlRequest(method: "POST", url: e2e.gateway + "/_sim/payouts/P-q/fail"))
            #expect(try object(try await e2e.get("/v1/payouts/P-q"))["status"] as? String == "failed")

            let missing = try await e2e.get("/v1/payouts/P-never")
            #expect(missing.status == 404)
            #expect(missing.headers["content-type"] == "application/problem+json")
            #expect(try object(missing)["code"] as? String == "order_not_found")
        }
    }

    @Test("GET /v1/channels, /healthz on both listeners, /readyz")
    func simpleRoutes() async throws {
        try await withSidecar { (e2e: E2E) async throws in
            let channels = try JSONSerialization.jsonObject(with: Data(try await e2e.get("/v1/channels").body)) as? [[String: Any]]
            #expect(channels?.count == 15)
            #expect(channels?.first?["name"] as? String == "微信")
            #expect(channels?.first?["label"] as? String == "WeChat")
            #expect(try await e2e.get("/healthz").status == 200)
            #expect(try await e2e.get("/readyz").status == 200)
            #expect(try await e2e.client.execute(CurlRequest(url: e2e.callbackListener + "/healthz")).status == 200)
        }
    }

    @Test("internal routes are 404 on the callback listener", arguments: ["/v1/channels", "/v1/deposits/D-1", "/readyz", "/openapi.json", "/metrics"])
    func notOnCallbackListener(path: String) async throws {
        try await withSidecar { (e2e: E2E) async throws in
            let response = try await e2e.client.execute(CurlRequest(url: e2e.callbackListener + path))
            #expect(response.status == 404)
            let post = try await e2e.client.execute(CurlRequest(method: "POST", url: e2e.callbackListener + "/v1/payouts", headers: [("Content-Type", "application/json")], body: Array("{}".utf8)))
            #expect(post.status == 404)
            #expect(try await e2e.gatewayRequests().isEmpty)
        }
    }

    @Test("PAYSIDECAR_API_TOKEN: 401 problem without or with a wrong token; health stays open")
    func apiToken() async throws {
        try await withSidecar(settings: ["PAYSIDECAR_API_TOKEN": TestMerchant.apiToken]) { (e2e: E2E) async throws in
            let missing = try await e2e.get("/v1/channels")
            #expect(missing.status == 401)
            #expect(missing.headers["www-authenticate"]?.hasPrefix("Bearer") == true)
            #expect(try object(missing)["code"] as? String == "unauthorized")
            #expect(try await e2e.get("/v1/channels", headers: [("Authorization", "Bearer wrong")]).status == 401)
            #expect(try await e2e.get("/v1/channels", headers: [("Authorization", "Basic \(TestMerchant.apiToken)")]).status == 401)
            #expect(try await e2e.get("/v1/channels", headers: [("Authorization", "Bearer \(TestMerchant.apiToken)")]).status == 200)
            let refused = try await e2e.post("/v1/payouts", json: #"{"mrn":"P-t","amount":1,"bankName":"b","accountName":"a","accountNumber":"1"}"#)
            #expect(refused.status == 401)
            #expect(try await e2e.gatewayRequests().isEmpty)
            #expect(try await e2e.get("/healthz").status == 200)
            #expect(try await e2e.get("/readyz").status == 200)
        }
    }

    @Test("every request is logged once with request id, route, mrn, status and gateway latency; no secret at trace level")
    func requestLogs() async throws {
        try await withSidecar(settings: ["PAYSIDECAR_API_TOKEN": TestMerchant.apiToken]) { (e2e: E2E) async throws in
            let auth = [("Authorization", "Bearer \(TestMerchant.apiToken)"), ("Content-Type", "application/json"), ("X-Request-Id", "req-log-1")]
            let created = try await e2e.post("/v1/payouts", json: #"{"mrn":"P-log","amount":5,"bankName":"b","accountName":"a","accountNumber":"1"}"#, headers: auth)
            #expect(created.headers["x-request-id"] == "req-log-1")
            _ = try await e2e.get("/v1/payouts/P-log", headers: auth)
            _ = try await e2e.post("/v1/deposits", json: #"{"mrn":"D-log","amount":"1","channelId":1,"returnUrl":"https://x.example/","mode":"page"}"#, headers: auth)
            _ = try await e2e.get("/v1/channels", headers: [("Authorization", "Bearer nope")])
            let lines = e2e.logs.lines.withLock { $0 }.filter { $0.contains("pay-sidecar request") }
            let create = try #require(lines.first { $0.contains("req-log-1") })
            for needle in ["route=/v1/payouts", "mrn=P-log", "status=202", "gateway_latency_ms=", "method=POST", "request_id=req-log-1"] {
                #expect(create.contains(needle), "\(needle) in \(create)")
            }
            #expect(lines.count == 4)
            let everything = e2e.logs.all
            #expect(!everything.isEmpty)
            #expect(!everything.contains(TestMerchant.secret), "the merchant secret is never logged")
            #expect(!everything.contains(TestMerchant.apiToken), "the API token is never logged")
        }
    }

    @Test("a request offering an h2c upgrade (Java's HttpClient does) is answered and does not stall the client's next request")
    func upgradeOffer() async throws {
        try await withSidecar { (e2e: E2E) async throws in
            let offer = try await e2e.client.execute(CurlRequest(url: e2e.api + "/v1/channels", headers: [
                ("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"), ("HTTP2-Settings", "AAMAAABkAAQCAAAAAAIAAAAA"),
            ], timeout: .seconds(3)))
            #expect(offer.status == 200)
            #expect(offer.headers["connection"]?.lowercased() == "close", "the connection is not reused after an upgrade offer")
            for callback in [false, true] {
                let base = callback ? e2e.callbackListener : e2e.api
                let next = try await e2e.client.execute(CurlRequest(url: base + "/healthz", headers: [("Upgrade", "h2c"), ("Connection", "Upgrade")], timeout: .seconds(3)))
                #expect(next.status == 200)
                let after = try await e2e.client.execute(CurlRequest(url: base + "/healthz", timeout: .seconds(3)))
                #expect(after.status == 200)
            }
        }
    }
}
