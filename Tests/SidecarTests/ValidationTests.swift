import CurlHTTP
import Foundation
import Testing

/// One invalid body and the field the problem must name.
struct InvalidCase: Sendable, CustomTestStringConvertible {
    let path: String
    let body: String
    let field: String
    var testDescription: String { "\(path) \(field): \(body)" }
}

let validDeposit = #""mrn":"D-v","amount":"10.00","channelId":1,"returnUrl":"https://shop.example/r""#
let validPayout = #""mrn":"P-v","amount":10,"bankName":"ICBC","accountName":"Li Si","accountNumber":"1234""#

func deposit(replacing field: String, with json: String?) -> String {
    var members = ["\"mrn\":\"D-v\"", "\"amount\":\"10.00\"", "\"channelId\":1", "\"returnUrl\":\"https://shop.example/r\""]
    members.removeAll { $0.hasPrefix("\"\(field)\":") }
    if let json { members.append("\"\(field)\":\(json)") }
    return "{" + members.joined(separator: ",") + "}"
}

func payout(replacing field: String, with json: String?) -> String {
    var members = ["\"mrn\":\"P-v\"", "\"amount\":10", "\"bankName\":\"ICBC\"", "\"accountName\":\"Li Si\"", "\"accountNumber\":\"1234\""]
    members.removeAll { $0.hasPrefix("\"\(field)\":") }
    if let json { members.append("\"\(field)\":\(json)") }
    return "{" + members.joined(separator: ",") + "}"
}

let invalidCases: [InvalidCase] = [
    // mrn: 1 to 64 characters, no control characters, no & or =.
    InvalidCase(path: "/v1/deposits", body: deposit(replacing: "mrn", with: nil), field: "mrn"),
    InvalidCase(path: "/v1/deposits", body: deposit(replacing: "mrn", with: #""""#), field: "mrn"),
    InvalidCase(path: "/v1/deposits", body: deposit(replacing: "mrn", with: "\"\(String(repeating: "x", count: 65))\""), field: "mrn"),
    InvalidCase(path: "/v1/deposits", body: deposit(replacing: "mrn", with: #""a&b""#), field: "mrn"),
    InvalidCase(path: "/v1/deposits", body: deposit(replacing: "mrn", with: #""a=b""#), field: "mrn"),
    InvalidCase(path: "/v1/deposits", body: deposit(replacing: "mrn", with: #""a\nb""#), field: "mrn"),
    InvalidCase(path: "/v1/deposits", body: deposit(replacing: "mrn", with: "12"), field: "mrn"),
    // amount: > 0, at most 2 decimals, plain digits.
    InvalidCase(path: "/v1/deposits", body: deposit(replacing: "amount", with: nil), field: "amount"),
    InvalidCase(path: "/v1/deposits", body: deposit(replacing: "amount", with: "0"), field: "amount"),
    InvalidCase(path: "/v1/deposits", body: deposit(replacing: "amount", with: "-1"), field: "amount"),
    InvalidCase(path: "/v1/deposits", body: deposit(replacing: "amount", with: "1.234"), field: "amount"),
    InvalidCase(path: "/v1/deposits", body: deposit(replacing: "amount", with: "1e2"), field: "amount"),
    InvalidCase(path: "/v1/deposits", body: deposit(replacing: "amount", with: #""01""#), field: "amount"),
    InvalidCase(path: "/v1/deposits", body: deposit(replacing: "amount", with: #"" 1""#), field: "amount"),
    InvalidCase(path: "/v1/deposits", body: deposit(replacing: "amount", with: "true"), field: "amount"),
    // channelId: from the table.
    InvalidCase(path: "/v1/deposits", body: deposit(replacing: "channelId", with: "0"), field: "channelId"),
    InvalidCase(path: "/v1/deposits", body: deposit(replacing: "channelId", with: "16"), field: "channelId"),
    InvalidCase(path: "/v1/deposits", body: deposit(replacing: "channelId", with: "1.5"), field: "channelId"),
    InvalidCase(path: "/v1/deposits", body: deposit(replacing: "channelId", with: nil), field: "channelId"),
    // URLs: absolute http(s).
    InvalidCase(path: "/v1/deposits", body: deposit(replacing: "returnUrl", with: #""/relative""#), field: "returnUrl"),
    InvalidCase(path: "/v1/deposits", body: deposit(replacing: "returnUrl", with: #""ftp://x.example/""#), field: "returnUrl"),
    InvalidCase(path: "/v1/deposits", body: deposit(replacing: "returnUrl", with: nil), field: "returnUrl"),
    InvalidCase(path: "/v1/deposits", body: deposit(replacing: "notifyUrl", with: #""javascript:alert(1)""#), field: "notifyUrl"),
    // payer: no control characters; mode: api or page; unknown fields refused.
    InvalidCase(path: "/v1/deposits", body: deposit(replacing: "payer", with: #""a\u0001b""#), field: "payer"),
    InvalidCase(path: "/v1/deposits", body: deposit(replacing: "mode", with: #""popup""#), field: "mode"),
    InvalidCase(path: "/v1/deposits", body: deposit(replacing: "callbackUrl", with: #""https://evil.example/""#), field: "callbackUrl"),
    InvalidCase(path: "/v1/deposits", body: deposit(replacing: "amout", with: "1"), field: "amout"),
    // Payouts: whole yuan; bank fields without control characters, & or =.
    InvalidCase(path: "/v1/payouts", body: payout(replacing: "amount", with: "10.5"), field: "amount"),
    InvalidCase(path: "/v1/payouts", body: payout(replacing: "amount", with: "0"), field: "amount"),
    InvalidCase(path: "/v1/payouts", body: payout(replacing: "amount", with: #""1.00""#), field: "amount"),
    InvalidCase(path: "/v1/payouts", body: payout(replacing: "bankName", with: #""A&B Bank""#), field: "bankName"),
    InvalidCase(path: "/v1/payouts", body: payout(replacing: "accountName", with: #""x=y""#), field: "accountName"),
    InvalidCase(path: "/v1/payouts", body: payout(replacing: "accountNumber", with: #""12\t34""#), field: "accountNumber"),
    InvalidCase(path: "/v1/payouts", body: payout(replacing: "accountNumber", with: nil), field: "accountNumber"),
    InvalidCase(path: "/v1/payouts", body: payout(replacing: "bankName", with: #""""#), field: "bankName"),
    InvalidCase(path: "/v1/payouts", body: payout(replacing: "mrn", with: #""P\u0000""#), field: "mrn"),
    InvalidCase(path: "/v1/payouts", body: payout(replacing: "callbackUrl", with: #""https://evil.example/""#), field: "callbackUrl"),
]

@Suite("Validation: nothing reaches the gateway")
struct ValidationTests {
    @Test("every field rule answers 422 invalid_request naming the field", arguments: invalidCases)
    func invalidField(_ c: InvalidCase) async throws {
        try await withSidecar { (e2e: E2E) async throws in
            let response = try await e2e.post(c.path, json: c.body)
            #expect(response.status == 422, "\(response.bodyText)")
            #expect(response.headers["content-type"] == "application/problem+json")
            let problem = try object(response)
            #expect(problem["code"] as? String == "invalid_request")
            #expect(problem["status"] as? Int == 422)
            let errors = try #require(problem["errors"] as? [[String: String]])
            #expect(errors.contains { $0["field"] == c.field }, "\(errors)")
            #expect(try await e2e.gatewayRequests().isEmpty, "the simulator received nothing")
        }
    }

    @Test("every invalid field is listed at once")
    func allErrorsAtOnce() async throws {
        try await withSidecar { (e2e: E2E) async throws in
            let problem = try object(try await e2e.post("/v1/deposits", json: #"{"mrn":"","amount":"x","channelId":99,"returnUrl":"nope"}"#))
            let fields = Set((problem["errors"] as? [[String: String]] ?? []).compactMap { $0["field"] })
            #expect(fields == ["mrn", "amount", "channelId", "returnUrl"])
        }
    }

    @Test("bodies: not JSON 400, not an object 400, wrong media type 415, over 64 KiB 413, query mrn rules 422")
    func bodies() async throws {
        try await withSidecar { (e2e: E2E) async throws in
            let notJSON = try await e2e.post("/v1/payouts", json: "{mrn: 1}")
            #expect(notJSON.status == 400)
            #expect(try object(notJSON)["code"] as? String == "invalid_json")
            #expect(try await e2e.post("/v1/payouts", json: "[1,2]").status == 400)
            let form = try await e2e.post("/v1/payouts", json: "mrn=1", headers: [("Content-Type", "application/x-www-form-urlencoded")])
            #expect(form.status == 415)
            #expect(try object(form)["code"] as? String == "unsupported_media_type")
            let huge = "{\"mrn\":\"P-big\",\"amount\":1,\"bankName\":\"\(String(repeating: "x", count: 70_000))\",\"accountName\":\"a\",\"accountNumber\":\"1\"}"
            let tooLarge = try await e2e.post("/v1/payouts", json: huge)
            #expect(tooLarge.status == 413)
            #expect(try object(tooLarge)["code"] as? String == "payload_too_large")
            #expect(try await e2e.get("/v1/deposits/a%26b").status == 422)
            #expect(try await e2e.get("/v1/deposits/\(String(repeating: "m", count: 65))").status == 422)
            #expect(try await e2e.get("/v1/deposits/D-1?callback=maybe").status == 422)
            #expect(try await e2e.get("/v1/deposits/D-1?foo=1").status == 422)
            let unknownRoute = try await e2e.get("/v1/refunds")
            #expect(unknownRoute.status == 404)
            #expect(unknownRoute.headers["content-type"] == "application/problem+json")
            #expect(try await e2e.gatewayRequests().isEmpty)
        }
    }
}
