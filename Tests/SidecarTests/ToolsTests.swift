import CurlHTTP
import Foundation
import TestSupport
import Testing

/// Runs the real binary with `input` on standard input.
func runTool(_ arguments: [String], environment: [String: String] = [:], input: String? = nil) async throws -> (status: Int32, stdout: String, stderr: String) {
    try await offThePool { try runToolBlocking(arguments, environment: environment, input: input) }
}

private func runToolBlocking(_ arguments: [String], environment: [String: String], input: String?) throws -> (status: Int32, stdout: String, stderr: String) {
    try runCapturing(paySidecarBinary().path, arguments, environment: environment, input: input)
}

@Suite("Operator's tools: sign, verify-callback, events")
struct ToolsTests {
    let merchant = ["PAYSIDECAR_SECRET_KEY": TestMerchant.secret, "PAYSIDECAR_APP_KEY": TestMerchant.appKey]

    @Test("sign prints the canonical string with the secret masked, and the signature")
    func sign() async throws {
        let run = try await runTool(["sign", "payout-request", "mrn=P-1", "amount=500", "bankName=ICBC", "accountName=张三", "accountNumber=6222",
                               "callbackUrl=https://cb.example/callbacks/payout", "payer=ignored"], environment: merchant)
        #expect(run.status == 0, "\(run.stderr)")
        let expected = independentSign([("accountName", "张三"), ("accountNumber", "6222"), ("amount", "500"), ("appKey", TestMerchant.appKey),
                                        ("bankName", "ICBC"), ("callbackUrl", "https://cb.example/callbacks/payout"), ("mrn", "P-1")])
        #expect(run.stdout.contains("canonical: accountName=张三&accountNumber=6222&amount=500&appKey=\(TestMerchant.appKey)&bankName=ICBC&callbackUrl=https://cb.example/callbacks/payout&mrn=P-1&key=***"))
        #expect(run.stdout.contains("sign:      \(expected)"))
        #expect(run.stdout.contains("not signed, ignored: payer"))
        #expect(!run.stdout.contains(TestMerchant.secret) && !run.stderr.contains(TestMerchant.secret))

        let spaced = try await runTool(["sign", "deposit_query", "mrn=D-1 "], environment: merchant)
        #expect(spaced.stdout.contains("warning:   mrn has leading or trailing whitespace"))

        let missing = try await runTool(["sign", "payout_request", "mrn=P-1"], environment: merchant)
        #expect(missing.status == 2)
        #expect(missing.stderr.split(separator: "\n").count == 1)
        #expect(missing.stderr.contains("accountName is missing"))
        let unknown = try await runTool(["sign", "refund", "mrn=1"], environment: merchant)
        #expect(unknown.status == 2 && unknown.stderr.contains("deposit_request"))
        let noSecret = try await runTool(["sign", "deposit_query", "mrn=1"], environment: ["PAYSIDECAR_APP_KEY": "a"])
        #expect(noSecret.status == 2 && noSecret.stderr.contains("PAYSIDECAR_SECRET_KEY"))
    }

    @Test("verify-callback accepts a good body (argument or stdin) and explains what is wrong with a bad one")
    func verifyCallback() async throws {
        let good = try await runTool(["verify-callback", depositCallbackForm(mrn: "D-v")], environment: merchant)
        #expect(good.status == 0, "\(good.stdout)\(good.stderr)")
        #expect(good.stdout.contains("ok    sign matches"))
        #expect(good.stdout.contains("VALID"))
        let piped = try await runTool(["verify-callback", "--kind", "payout"], environment: merchant, input: payoutCallbackForm(mrn: "P-v") + "\n")
        #expect(piped.status == 0, "\(piped.stdout)")

        // The signer formatted the amount as 100 but the body says 100.00.
        let signedFields = [("amount", "100"), ("appKey", TestMerchant.appKey), ("channel", "2"), ("mrn", "D-x"), ("originAmount", "100")]
        let reformatted = formBody([("amount", "100.00")] + signedFields.dropFirst() + [("sign", independentSign(signedFields))])
        let amount = try await runTool(["verify-callback", reformatted], environment: merchant)
        #expect(amount.status == 1)
        #expect(amount.stdout.contains("FAIL  sign does not match"))
        #expect(amount.stdout.contains("the signer used amount = '100' (without decimals)"), "\(amount.stdout)")
        #expect(amount.stdout.contains("INVALID"))

        let otherSecret = try await runTool(["verify-callback", depositCallbackForm(mrn: "D-y", secret: "someone-elses")], environment: merchant)
        #expect(otherSecret.status == 1)
        #expect(otherSecret.stdout.contains("signer's secret differs"))
        let previous = try await runTool(["verify-callback", "--previous-secret-key", "someone-elses", depositCallbackForm(mrn: "D-y", secret: "someone-elses")],
                                   environment: merchant)
        #expect(previous.status == 0 && previous.stdout.contains("PREVIOUS secret"))

        let wrongApp = try await runTool(["verify-callback", depositCallbackForm(mrn: "D-z", appKey: "mch_other")], environment: merchant)
        #expect(wrongApp.status == 1 && wrongApp.stdout.contains("FAIL  appKey is 'mch_other'"))
        let missing = try await runTool(["verify-callback", "amount=1&appKey=\(TestMerchant.appKey)&mrn=P-1"], environment: merchant)
        #expect(missing.status == 1 && missing.stdout.contains("FAIL  sign is missing"))
        let repeated = try await runTool(["verify-callback", payoutCallbackForm(mrn: "P-r") + "&mrn=P-other"], environment: merchant)
        #expect(repeated.status == 1 && repeated.stdout.contains("mrn appears more than once"))
        for run in [good, amount, otherSecret, wrongApp] { #expect(!run.stdout.contains(TestMerchant.secret)) }
    }

    @Test("events list, show and redeliver talk to the internal API with the token")
    func events() async throws {
        try await withSidecar(settings: ["PAYSIDECAR_API_TOKEN": TestMerchant.apiToken]) { (e2e: E2E) async throws in
            try await e2e.createDeposit("D-cli", headers: [("Content-Type", "application/json"), ("Authorization", "Bearer \(TestMerchant.apiToken)")])
            #expect(try await e2e.callback("deposit", depositCallbackForm(mrn: "D-cli")).bodyText == "success")
            #expect(await eventually { e2e.receiver.requests.count == 1 })
            let id = try #require(e2e.receiver.requests.first?.header("webhook-id"))
            let environment = ["PAYSIDECAR_API_TOKEN": TestMerchant.apiToken]
            #expect(await eventually { (try? await runTool(["events", "list", "--api-url", e2e.api, "--status", "delivered"], environment: environment))?.stdout.contains(id) == true })
            let list = try await runTool(["events", "list", "--api-url", e2e.api], environment: environment)
            #expect(list.status == 0, "\(list.stderr)")
            #expect(list.stdout.hasPrefix("ID"))
            #expect(list.stdout.contains("deposit.succeeded") && list.stdout.contains("D-cli") && list.stdout.contains("delivered"))

            let show = try await runTool(["events", "show", id, "--api-url", e2e.api], environment: environment)
            #expect(show.status == 0)
            let shown = try #require(try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any])
            #expect(shown["id"] as? String == id)
            #expect((shown["deliveryAttempts"] as? [Any])?.count == 1)

            let redeliver = try await runTool(["events", "redeliver", id, "--api-url", e2e.api], environment: environment)
            #expect(redeliver.status == 0)
            #expect(redeliver.stdout.contains("queued \(id)"))
            #expect(await eventually { e2e.receiver.requests.count == 2 })
            #expect(e2e.receiver.requests.last?.header("webhook-id") == id)

            let unauthorized = try await runTool(["events", "list", "--api-url", e2e.api])
            #expect(unauthorized.status == 1 && unauthorized.stderr.contains("HTTP 401"))
            let absent = try await runTool(["events", "show", "evt_nope", "--api-url", e2e.api], environment: environment)
            #expect(absent.status == 1 && absent.stderr.contains("event_not_found"))
            let down = try await runTool(["events", "list", "--api-url", "http://127.0.0.1:1"], environment: environment)
            #expect(down.status == 2 && down.stderr.contains("cannot reach"))
        }
    }
}
