import CurlHTTP
import Foundation
import TestSupport
import Testing

/// The console (`/console`), through the real binary: by plain HTTP for sign-in and its refusals, and end to end in
/// headless Chromium with JavaScript off.
@Suite("Console (the real binary)", .serialized)
struct ConsoleTests {
    static let token = TestMerchant.apiToken
    static let auth = [("Content-Type", "application/json"), ("Authorization", "Bearer \(ConsoleTests.token)")]

    @Test("sign-in: the console asks for the token, sets a cookie that does not hold it, and refuses actions without it")
    func signIn() async throws {
        try await withBinarySidecar(settings: ["PAYSIDECAR_API_TOKEN": Self.token]) { e2e in
            let page = try await e2e.get("/console")
            #expect(page.status == 303 && page.headers["location"] == "/console/login", "a page without a session goes to sign-in")
            let form = try await e2e.get("/console/login")
            #expect(form.status == 200 && form.bodyText.contains("name=\"token\""))
            let wrong = try await e2e.client.execute(CurlRequest(method: "POST", url: e2e.api + "/console/login",
                headers: [("Content-Type", "application/x-www-form-urlencoded")], body: Array("token=nope".utf8)))
            #expect(wrong.status == 401 && wrong.headers["set-cookie"] == nil)
            let right = try await e2e.client.execute(CurlRequest(method: "POST", url: e2e.api + "/console/login",
                headers: [("Content-Type", "application/x-www-form-urlencoded")], body: Array("token=\(Self.token)".utf8)))
            let cookie = try #require(right.headers["set-cookie"])
            #expect(right.status == 303 && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && !cookie.contains(Self.token))
            let session = String(cookie.split(separator: ";")[0])
            let console = try await e2e.get("/console", headers: [("Cookie", session)])
            #expect(console.status == 200 && console.headers["content-type"]?.hasPrefix("text/html") == true)
            #expect(console.bodyText.contains("Needs a person") && console.bodyText.contains("<svg"))
            let action = try await e2e.client.execute(CurlRequest(method: "POST", url: e2e.api + "/console/events/evt_x/redeliver"))
            #expect(action.status == 401, "an action without a session is refused")
            #expect(try await e2e.get("/v1/events", headers: [("Cookie", session)]).status == 401, "the cookie opens the console only, not the API")
        }
    }

    @Test("in Chromium without JavaScript: a flagged order is at the top, and pressing Redeliver delivers the event")
    func browser() async throws {
        try await withBinarySidecar(settings: ["PAYSIDECAR_API_TOKEN": Self.token, "PAYSIDECAR_WEBHOOK_RETRY_SCHEDULE": "50ms"]) { e2e in
            // Every webhook fails at first, so the events wait in the console's failed list.
            e2e.receiverAnswers.setFallback(TestHTTPResponse(status: 410, text: "gone"))
            try await e2e.createDeposit("D-console-ok", headers: Self.auth)
            #expect(try await e2e.callback("deposit", depositCallbackForm(mrn: "D-console-ok")).bodyText == "success")
            try await e2e.createPayout("P-console-flag", headers: Self.auth)
            #expect(try await e2e.callback("payout", payoutCallbackForm(mrn: "P-console-flag", amount: "5000")).bodyText == "success")
            #expect(await eventually { (try? await e2e.allEvents("&status=failed", headers: Self.auth))?.count == 3 })
            let flagged = try #require(try await e2e.allEvents("&type=payout.flagged", headers: Self.auth).first?["id"] as? String)
            e2e.receiverAnswers.setFallback(TestHTTPResponse(status: 204))
            let before = e2e.receiver.requests.count

            let temporary = try temporaryFolder("console").appendingPathComponent("console.png").path
            let screenshot = ProcessInfo.processInfo.environment["PAYSIDECAR_CONSOLE_SCREENSHOT"] ?? temporary
            let run = try await runProgram([
                "python3", repositoryRoot.appendingPathComponent("Tests/Browser/console.py").path, "--url", e2e.api, "--token", Self.token,
                "--mrn", "P-console-flag", "--flag", "amount_mismatch", "--event", flagged, "--screenshot", screenshot,
            ])
            #expect(run.status == 0, "the browser's checks: \(run.output)")
            #expect(FileManager.default.fileExists(atPath: screenshot))
            #expect(await eventually { e2e.receiver.requests.dropFirst(before).contains { $0.header("webhook-id") == flagged } }, "redelivered")
            #expect(await eventually { (try? await e2e.get("/v1/events/\(flagged)", headers: Self.auth)).flatMap { try? object($0) }?["status"] as? String == "delivered" })
        }
    }
}
