import CurlHTTP
import Foundation
import GRDB
import PostgresTestSupport
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Callbacks from the simulator go nowhere (its callbacks hit a closed port), so only the reconciler, or the
/// test posting a callback itself, tells the sidecar an outcome.
let quietGateway = ["PAYSIDECAR_PUBLIC_URL": "http://127.0.0.1:1", "PAYSIDECAR_RECONCILE_AFTER": "200ms"]

extension BinaryE2E {
    /// The webhooks of one type the receiver got for `mrn`.
    func webhooks(_ type: String, mrn: String) -> [[String: Any]] {
        webhookBodies().filter { $0["type"] as? String == type && ($0["data"] as? [String: Any])?["mrn"] as? String == mrn }
    }

    func data(_ type: String, mrn: String) -> [String: Any]? {
        webhooks(type, mrn: mrn).first?["data"] as? [String: Any]
    }

    /// Rows of a table of the binary's journal (SQLite read-only beside the running process, or PostgreSQL).
    func rowCount(_ table: String) async throws -> Int {
        if database.hasPrefix("postgres") { return try await PostgresTestDatabase.integer(database, "SELECT COUNT(*) FROM \(table)") }
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: database, configuration: configuration)
        return try await queue.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table)") ?? -1 }
    }
}

/// Each money-safety case the review of issue 12 reproduced, through the real binary (contract section 9).
@Suite("Money safety at the edges (the real binary)", .serialized)
struct MoneySafetyTests {
    @Test("a validly signed payout callback saying 5000 for a 500 payout is stored, answered success and flagged; a later query keeps the flag")
    func payoutAmountMismatch() async throws {
        try await withBinarySidecar(settings: quietGateway) { e2e in
            try await e2e.createPayout("P-5000")
            #expect(try await e2e.callback("payout", payoutCallbackForm(mrn: "P-5000", amount: "5000")).bodyText == "success")
            #expect(await eventually { e2e.webhooks("payout.flagged", mrn: "P-5000").count == 1 && e2e.webhooks("payout.succeeded", mrn: "P-5000").count == 1 })
            let settled = try #require(e2e.data("payout.succeeded", mrn: "P-5000"))
            #expect(settled["amount"] as? String == "5000" && settled["orderAmount"] as? String == "500" && settled["flag"] as? String == "amount_mismatch")
            let flag = try #require(e2e.data("payout.flagged", mrn: "P-5000"))
            #expect(flag["flag"] as? String == "amount_mismatch" && flag["reportedAmount"] as? String == "5000" && flag["orderAmount"] as? String == "500")
            // The gateway's query (no amount) cannot wash the mismatch away.
            try await e2e.simPost("/_sim/payouts/P-5000/complete")
            _ = try await e2e.get("/v1/payouts/P-5000")
            try await Task.sleep(for: .milliseconds(600))
            let journal = try await e2e.journal("payout", "P-5000")
            #expect(journal["state"] as? String == "succeeded" && journal["flag"] as? String == "amount_mismatch" && journal["paidAmount"] as? String == "5000")
            #expect(e2e.webhookBodies().count == 2, "one settlement, one flag; nothing more")
        }
    }

    @Test("a deposit settled by query says amount null, amountConfirmed false; the later callback fills paidAmount and flags 90.00 paid of 100")
    func depositAmountFromCallback() async throws {
        try await withBinarySidecar(settings: quietGateway) { e2e in
            try await e2e.createDeposit("D-90")
            try await e2e.simPost("/_sim/deposits/D-90/pay", #"{"amount":"90.00"}"#)
            #expect(await eventually { e2e.webhooks("deposit.succeeded", mrn: "D-90").count == 1 })
            let byQuery = try #require(e2e.data("deposit.succeeded", mrn: "D-90"))
            #expect(byQuery["amount"] is NSNull && byQuery["amountConfirmed"] as? Bool == false && byQuery["originAmount"] as? String == "100")
            #expect(byQuery["source"] as? String == "query")
            // The callback the gateway tried to send arrives at last.
            #expect(try await e2e.callback("deposit", depositCallbackForm(mrn: "D-90", amount: "90.00", originAmount: "100")).bodyText == "success")
            #expect(await eventually { e2e.webhooks("deposit.flagged", mrn: "D-90").count == 1 })
            let flag = try #require(e2e.data("deposit.flagged", mrn: "D-90"))
            #expect(flag["flag"] as? String == "amount_mismatch" && flag["reportedAmount"] as? String == "90.00")
            let journal = try await e2e.journal("deposit", "D-90")
            #expect(journal["paidAmount"] as? String == "90.00" && journal["amountConfirmed"] as? Bool == true && journal["flag"] as? String == "amount_mismatch")
            #expect(e2e.webhooks("deposit.succeeded", mrn: "D-90").count == 1, "still one settlement event")
        }
    }

    @Test("after a query said failed, a signed paid callback is answered success, flagged contradicting_outcome, and the order stays failed")
    func paidAfterFailed() async throws {
        try await withBinarySidecar(settings: quietGateway) { e2e in
            try await e2e.createPayout("P-contra")
            try await e2e.simPost("/_sim/payouts/P-contra/fail")
            #expect(await eventually { e2e.webhooks("payout.failed", mrn: "P-contra").count == 1 })
            #expect(try await e2e.callback("payout", payoutCallbackForm(mrn: "P-contra")).bodyText == "success")
            #expect(await eventually { e2e.webhooks("payout.flagged", mrn: "P-contra").count == 1 })
            #expect(e2e.data("payout.flagged", mrn: "P-contra")?["flag"] as? String == "contradicting_outcome")
            #expect(e2e.data("payout.flagged", mrn: "P-contra")?["orderStatus"] as? String == "failed")
            #expect(try await e2e.journal("payout", "P-contra")["state"] as? String == "failed")
            #expect(e2e.webhooks("payout.succeeded", mrn: "P-contra").isEmpty, "a terminal outcome never silently changes")
        }
    }

    @Test("after pruning, a replayed callback answers success and emits nothing (same webhook-ids); a retried create reports the outcome")
    func replayAfterPruning() async throws {
        try await withBinarySidecar(settings: ["PAYSIDECAR_JOURNAL_RETENTION": "2s"]) { e2e in
            try await e2e.createDeposit("D-pruned")
            let form = depositCallbackForm(mrn: "D-pruned")
            #expect(try await e2e.callback("deposit", form).bodyText == "success")
            #expect(await eventually { e2e.receiver.requests.count == 1 })
            #expect(await eventually(timeout: .seconds(20)) { (try? await e2e.journal("deposit", "D-pruned"))?["pruned"] as? Bool == true }, "pruned to a tombstone")
            #expect(try await e2e.callback("deposit", form).bodyText == "success", "the gateway replays it")
            try await Task.sleep(for: .milliseconds(500))
            #expect(e2e.receiver.requests.count == 1, "no second deposit.succeeded")
            #expect(try await e2e.allEvents().count == 1)
            let retry = try await e2e.post("/v1/deposits", json: #"{"mrn":"D-pruned","amount":"100","channelId":2,"returnUrl":"https://shop.example/r"}"#)
            #expect(try retry.status == 200 && (object(retry))["status"] as? String == "succeeded")
            let other = try await e2e.post("/v1/deposits", json: #"{"mrn":"D-pruned","amount":"101","channelId":2,"returnUrl":"https://shop.example/r"}"#)
            #expect(try other.status == 409 && (object(other))["code"] as? String == "mrn_conflict")
            #expect(try await e2e.creates("/api/Pay/Create") == 1, "the pruned mrn is never sent again")
        }
    }

    @Test("mrn_duplication for an mrn just journaled as new: orderStatus unknown, never sent again, flagged when the gateway's queries do not find it")
    func duplicateForNewMrn() async throws {
        try await withBinarySidecar(settings: quietGateway.merging(["PAYSIDECAR_RESEND_AFTER": "500ms"]) { $1 }) { e2e in
            try await e2e.addFault(#"{"path":"/api/Payouts/Create","kind":"answer","value":{"error":"mrn_duplication"},"count":1}"#)
            let answer = try await e2e.post("/v1/payouts", json: #"{"mrn":"P-dup","amount":500,"bankName":"b","accountName":"a","accountNumber":"1"}"#)
            #expect(answer.status == 409)
            #expect(try object(answer)["code"] as? String == "mrn_duplication" && (try object(answer))["orderStatus"] as? String == "unknown")
            #expect(await eventually { e2e.webhooks("payout.flagged", mrn: "P-dup").count == 1 })
            #expect(e2e.data("payout.flagged", mrn: "P-dup")?["flag"] as? String == "duplicate_mrn_not_found")
            try await Task.sleep(for: .seconds(1))
            #expect(try await e2e.creates("/api/Payouts/Create") == 1, "a duplicated mrn is never sent again")
            #expect(try await e2e.journal("payout", "P-dup")["state"] as? String == "unknown")
        }
    }

    @Test("an undocumented refusal (system_busy) is unknown; the payout is re-sent once, only after object_not_found answers span PAYSIDECAR_RESEND_AFTER")
    func undocumentedCodeResentAfterSpan() async throws {
        try await withBinarySidecar(settings: quietGateway.merging(["PAYSIDECAR_RESEND_AFTER": "3s"]) { $1 }) { e2e in
            try await e2e.addFault(#"{"path":"/api/Payouts/Create","kind":"answer","value":{"error":"system_busy"},"count":1}"#)
            let started = ContinuousClock.now
            let answer = try await e2e.post("/v1/payouts", json: #"{"mrn":"P-busy","amount":500,"bankName":"b","accountName":"a","accountNumber":"1"}"#)
            #expect(try answer.status == 502 && (object(answer))["orderStatus"] as? String == "unknown", "never a plain refusal when it may exist")
            // Queried every 200 ms to 3 s or so, answered object_not_found: not re-sent before the span.
            #expect(await eventually(timeout: .seconds(20)) { (try? await e2e.creates("/api/Payouts/Create")) == 2 })
            #expect(ContinuousClock.now - started >= .seconds(3), "re-sent only after PAYSIDECAR_RESEND_AFTER")
            #expect(await eventually { (try? await e2e.journal("payout", "P-busy"))?["state"] as? String == "pending" })
            try await Task.sleep(for: .seconds(1))
            #expect(try await e2e.creates("/api/Payouts/Create") == 2, "once")
            try await e2e.simPost("/_sim/payouts/P-busy/complete")
            #expect(await eventually { e2e.webhooks("payout.succeeded", mrn: "P-busy").count == 1 })
        }
    }

    @Test("a re-send refused with another code leaves the order unknown and flagged resend_refused, never rejected")
    func resendRefused() async throws {
        try await withBinarySidecar(settings: quietGateway.merging(["PAYSIDECAR_RESEND_AFTER": "500ms"]) { $1 }) { e2e in
            try await e2e.addFault(#"{"path":"/api/Payouts/Create","kind":"answer","value":{"error":"system_busy"},"count":2}"#)
            _ = try await e2e.post("/v1/payouts", json: #"{"mrn":"P-busy2","amount":500,"bankName":"b","accountName":"a","accountNumber":"1"}"#)
            #expect(await eventually(timeout: .seconds(20)) { e2e.webhooks("payout.flagged", mrn: "P-busy2").count == 1 })
            #expect(e2e.data("payout.flagged", mrn: "P-busy2")?["flag"] as? String == "resend_refused")
            let journal = try await e2e.journal("payout", "P-busy2")
            #expect(journal["state"] as? String == "unknown")
            #expect(try await e2e.creates("/api/Payouts/Create") == 2)
        }
    }

    @Test("an unknown payout is never re-sent past the reconcile horizon: it is flagged past_horizon instead")
    func noResendPastHorizon() async throws {
        try await withBinarySidecar(settings: quietGateway.merging(["PAYSIDECAR_RESEND_AFTER": "10s", "PAYSIDECAR_RECONCILE_HORIZON": "2s"]) { $1 }) { e2e in
            try await e2e.addFault(#"{"path":"/api/Payouts/Create","kind":"status","value":503,"count":1}"#)
            let answer = try await e2e.post("/v1/payouts", json: #"{"mrn":"P-horizon","amount":500,"bankName":"b","accountName":"a","accountNumber":"1"}"#)
            #expect(try (object(answer))["orderStatus"] as? String == "unknown")
            #expect(await eventually(timeout: .seconds(20)) { e2e.webhooks("payout.flagged", mrn: "P-horizon").count == 1 })
            #expect(e2e.data("payout.flagged", mrn: "P-horizon")?["flag"] as? String == "past_horizon")
            #expect(try await e2e.creates("/api/Payouts/Create") == 1)
        }
    }

    @Test("a signed callback for an mrn nobody created is stored and emitted flagged unknown_order, never as a settlement")
    func unknownOrder() async throws {
        try await withBinarySidecar { e2e in
            #expect(try await e2e.callback("deposit", depositCallbackForm(mrn: "D-stranger")).bodyText == "success")
            #expect(await eventually { e2e.webhooks("deposit.flagged", mrn: "D-stranger").count == 1 })
            let flag = try #require(e2e.data("deposit.flagged", mrn: "D-stranger"))
            #expect(flag["flag"] as? String == "unknown_order" && flag["knownOrder"] as? Bool == false && flag["reportedAmount"] as? String == "100.00")
            #expect(try await e2e.callback("deposit", depositCallbackForm(mrn: "D-stranger")).bodyText == "success")
            try await Task.sleep(for: .milliseconds(400))
            #expect(e2e.webhookBodies().count == 1, "a replay of it is a duplicate")
            #expect(e2e.webhooks("deposit.succeeded", mrn: "D-stranger").isEmpty)
        }
    }

    @Test("deposit callbacks reporting 0 paid, or another channel than the order's, are flagged")
    func zeroAndChannel() async throws {
        try await withBinarySidecar { e2e in
            try await e2e.createDeposit("D-zero")
            try await e2e.createDeposit("D-chan")
            #expect(try await e2e.callback("deposit", depositCallbackForm(mrn: "D-zero", amount: "0.00")).bodyText == "success")
            #expect(try await e2e.callback("deposit", depositCallbackForm(mrn: "D-chan", channel: "5")).bodyText == "success")
            // The settlement and the flag are delivered concurrently: wait for both.
            #expect(await eventually { e2e.webhooks("deposit.flagged", mrn: "D-zero").count == 1 && e2e.webhooks("deposit.flagged", mrn: "D-chan").count == 1
                && e2e.webhooks("deposit.succeeded", mrn: "D-chan").count == 1 })
            #expect(e2e.data("deposit.flagged", mrn: "D-zero")?["flag"] as? String == "zero_amount")
            let channel = try #require(e2e.data("deposit.flagged", mrn: "D-chan"))
            #expect(channel["flag"] as? String == "channel_mismatch" && channel["channelId"] as? Int == 2 && channel["reportedChannelId"] as? Int == 5)
            #expect(e2e.data("deposit.succeeded", mrn: "D-chan")?["flag"] as? String == "channel_mismatch", "the settlement event carries the flag too")
        }
    }

    @Test("50 half-sent request heads are closed after PAYSIDECAR_HEADER_TIMEOUT; an idle keep-alive connection after PAYSIDECAR_IDLE_TIMEOUT, not before")
    func slowHeadsAndIdleConnections() async throws {
        try await withBinarySidecar(settings: ["PAYSIDECAR_HEADER_TIMEOUT": "1s", "PAYSIDECAR_IDLE_TIMEOUT": "4s"]) { e2e in
            let port = Int(e2e.callbackListener.split(separator: ":").last!)!
            let slow = try (0..<50).map { _ in try RawConnection(port: port) }
            for connection in slow { connection.send("POST /callbacks/deposit HTTP/1.1\r\nHost: sidecar\r\nContent-Type: application/x-www-") }
            #expect(await eventually(timeout: .seconds(8)) { slow.allSatisfy(\.isClosedByPeer) }, "every half-sent head closed by the server")
            // A finished request keeps its connection for the idle timeout (the head deadline does not apply
            // while no new request has started), then loses it.
            let kept = try RawConnection(port: port)
            kept.send("GET /healthz HTTP/1.1\r\nHost: sidecar\r\n\r\n")
            #expect(await eventually { kept.received().contains("200 OK") })
            try await Task.sleep(for: .seconds(2))
            #expect(!kept.isClosedByPeer, "idle for 2 s: still open (header timeout 1 s does not apply)")
            #expect(await eventually(timeout: .seconds(8)) { kept.isClosedByPeer }, "closed after the idle timeout")
            #expect(try await e2e.rowCount("rejected_callbacks") == 0, "closing slow connections writes nothing")
        }
    }

    @Test("PAYSIDECAR_MAX_CONNECTIONS: a connection over the cap is closed at once; a freed slot serves again")
    func connectionCap() async throws {
        try await withBinarySidecar(settings: ["PAYSIDECAR_MAX_CONNECTIONS": "5"]) { e2e in
            let port = Int(e2e.callbackListener.split(separator: ":").last!)!
            let held = try (0..<5).map { _ in try RawConnection(port: port) }
            try await Task.sleep(for: .milliseconds(200))
            let extra = try RawConnection(port: port)
            #expect(await eventually(timeout: .seconds(3)) { extra.isClosedByPeer }, "the sixth is closed")
            #expect(held.allSatisfy { !$0.isClosedByPeer }, "the five held ones stay open")
            for connection in held { shutdown(connection.descriptor, Int32(SHUT_RDWR)) }
            #expect(await eventually { (try? await e2e.client.execute(CurlRequest(url: e2e.callbackListener + "/healthz")))?.status == 200 })
            let metrics = try await e2e.get("/metrics").bodyText
            #expect((metric(metrics, "paysidecar_connections_refused_total", ["listener": "callback", "reason": "over_capacity"]) ?? 0) >= 1)
        }
    }

    @Test("the callback allowlist applies when the connection is accepted: a disallowed source gets no answer and costs no write")
    func allowlistAtAccept() async throws {
        try await withBinarySidecar(settings: ["PAYSIDECAR_CALLBACK_ALLOWED_IPS": "10.0.0.0/8"]) { e2e in
            let port = Int(e2e.callbackListener.split(separator: ":").last!)!
            let connection = try RawConnection(port: port)
            connection.send("POST /callbacks/deposit HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\na=b")
            #expect(await eventually(timeout: .seconds(3)) { connection.isClosedByPeer })
            #expect(connection.received().isEmpty, "not a byte of HTTP answered")
            do {
                _ = try await e2e.callback("deposit", depositCallbackForm(mrn: "D-far"))
                Issue.record("a disallowed source got an answer")
            } catch {}
            #expect(try await e2e.rowCount("rejected_callbacks") == 0)
            #expect((metric(try await e2e.get("/metrics").bodyText, "paysidecar_connections_refused_total", ["listener": "callback", "reason": "address_not_allowed"]) ?? 0) >= 2)
            #expect(try await e2e.get("/healthz").status == 200, "the internal listener is not behind the callback allowlist")
        }
    }

    @Test("a flood of forged callbacks is answered 401 and counted, with at most a bounded sample written to the database")
    func refusedCallbacksSampled() async throws {
        try await withBinarySidecar { e2e in
            let forged = depositCallbackForm(mrn: "D-forged", sign: String(repeating: "0", count: 32))
            let started = ContinuousClock.now
            for _ in 0..<200 { #expect(try await e2e.callback("deposit", forged).status == 401) }
            let seconds = Int((ContinuousClock.now - started).components.seconds) + 1
            let stored = try await e2e.rowCount("rejected_callbacks")
            #expect(stored >= 1 && stored <= 10 * (seconds + 1), "\(stored) rows for 200 refusals in \(seconds) s")
            #expect(metric(try await e2e.get("/metrics").bodyText, "paysidecar_callbacks_total", ["kind": "deposit", "result": "rejected", "reason": "bad_signature"]) == 200)
        }
    }

    @Test("X-Forwarded-For from a trusted proxy whose right-most hop does not parse is refused, not replaced by the proxy's address")
    func unreadableForwardedFor() async throws {
        try await withBinarySidecar(settings: ["PAYSIDECAR_TRUSTED_PROXIES": "127.0.0.1", "PAYSIDECAR_CALLBACK_ALLOWED_IPS": "127.0.0.0/8,203.0.113.0/24"]) { e2e in
            try await e2e.createDeposit("D-xff")
            for header in ["not-an-address", "203.0.113.9, bogus"] {
                let response = try await e2e.callback("deposit", depositCallbackForm(mrn: "D-xff"),
                                                      headers: [("Content-Type", "application/x-www-form-urlencoded"), ("X-Forwarded-For", header)])
                #expect(response.status == 400, "\(header): \(response.bodyText)")
            }
            let good = try await e2e.callback("deposit", depositCallbackForm(mrn: "D-xff"),
                                              headers: [("Content-Type", "application/x-www-form-urlencoded"), ("X-Forwarded-For", "203.0.113.9")])
            #expect(good.bodyText == "success")
        }
    }

    @Test("a leaked merchant secret is revoked without a restart: pay-sidecar secrets revoke-previous; and a grace period of 0")
    func revokePrevious() async throws {
        let files = try SecretFiles()
        try files.write(merchant: TestMerchant.secret, webhook: TestMerchant.webhookSecret, token: TestMerchant.apiToken)
        let newSecret = "the-rotated-merchant-secret"
        try await withBinarySidecar(settings: files.settings) { e2e in
            let auth = [("Content-Type", "application/json"), ("Authorization", "Bearer \(TestMerchant.apiToken)")]
            try await e2e.createPayout("P-old-1", headers: auth)
            try await e2e.createPayout("P-old-2", headers: auth)
            try files.write(merchant: newSecret, webhook: TestMerchant.webhookSecret, token: TestMerchant.apiToken)
            e2e.sidecar.process!.signal(SIGHUP)
            #expect(await eventually { e2e.log.contains("secrets rotated") })
            #expect(try await e2e.callback("payout", payoutCallbackForm(mrn: "P-old-1")).bodyText == "success", "the previous secret, in its grace period")
            let run = try await runTool(["secrets", "revoke-previous", "--api-url", e2e.api], environment: ["PAYSIDECAR_API_TOKEN": TestMerchant.apiToken])
            #expect(run.status == 0 && run.stdout.contains("revoked: merchant_secret"), "\(run.stdout)\(run.stderr)")
            #expect(try await e2e.callback("payout", payoutCallbackForm(mrn: "P-old-2")).status == 401, "revoked at once")
            let fields = [("amount", "500"), ("appKey", TestMerchant.appKey), ("mrn", "P-old-2")]
            #expect(try await e2e.callback("payout", formBody(fields + [("sign", independentSign(fields, secret: newSecret))])).bodyText == "success")
            let again = try await runTool(["secrets", "revoke-previous", "--api-url", e2e.api], environment: ["PAYSIDECAR_API_TOKEN": TestMerchant.apiToken])
            #expect(again.stdout.contains("no previous secret"))
        }
        try files.write(merchant: TestMerchant.secret, webhook: TestMerchant.webhookSecret, token: TestMerchant.apiToken)
        try await withBinarySidecar(settings: files.settings.merging(["PAYSIDECAR_SECRET_GRACE_PERIOD": "0"]) { $1 }) { e2e in
            let auth = [("Content-Type", "application/json"), ("Authorization", "Bearer \(TestMerchant.apiToken)")]
            try await e2e.createPayout("P-zero", headers: auth)
            try files.write(merchant: newSecret, webhook: TestMerchant.webhookSecret, token: TestMerchant.apiToken)
            e2e.sidecar.process!.signal(SIGHUP)
            #expect(await eventually { e2e.log.contains("secrets rotated") })
            #expect(try await e2e.callback("payout", payoutCallbackForm(mrn: "P-zero")).status == 401, "no grace at all")
        }
    }

    @Test("secrets given as flags are warned about (they show in ps); URLs in the logs lose their userinfo and query")
    func secretFlagsAndURLs() async throws {
        let receiverToken = "hook-query-token-77"
        try await withBinarySidecar(settings: ["PAYSIDECAR_SECRET_KEY": ""], arguments: ["--secret-key", TestMerchant.secret]) { e2e in
            #expect(await eventually { e2e.log.contains("a secret was given on the command line") })
            #expect(e2e.log.contains("--secret-key"))
        }
        let receiver = try await TestHTTPServer.start { _ in TestHTTPResponse(status: 204) }
        let port = receiver.port
        try await withBinarySidecar(settings: ["PAYSIDECAR_WEBHOOK_URL": "http://hookuser:hookpass@127.0.0.1:\(port)/in"]) { e2e in
            try await e2e.createDeposit("D-url")
            #expect(try await e2e.callback("deposit", depositCallbackForm(mrn: "D-url")).bodyText == "success")
            let order = #"{"mrn":"D-url-2","amount":"100","channelId":2,"returnUrl":"https://shop.example/r","notifyUrl":"http://127.0.0.1:\#(port)/in?token=\#(receiverToken)"}"#
            #expect(try await e2e.post("/v1/deposits", json: order).status == 201)
            #expect(try await e2e.callback("deposit", depositCallbackForm(mrn: "D-url-2")).bodyText == "success")
            #expect(await eventually { receiver.requests.count == 2 }, "the webhooks still go to the full URLs")
            #expect(receiver.requests.contains { $0.uri.contains(receiverToken) } && receiver.requests.contains { $0.header("authorization")?.hasPrefix("Basic ") == true })
            #expect(await eventually { e2e.log.contains("webhook attempt") })
            #expect(!e2e.log.contains("hookpass") && !e2e.log.contains(receiverToken), "no userinfo or query in the logs")
            #expect(e2e.log.contains("127.0.0.1:\(port)/in"))
        }
        try await receiver.stop()
    }

    @Test("delivered events and their attempts are pruned after PAYSIDECAR_EVENT_RETENTION; failed ones stay")
    func eventRetention() async throws {
        try await withBinarySidecar(settings: ["PAYSIDECAR_EVENT_RETENTION": "2s", "PAYSIDECAR_WEBHOOK_RETRY_SCHEDULE": "50ms"]) { e2e in
            try await e2e.createDeposit("D-kept")
            #expect(try await e2e.callback("deposit", depositCallbackForm(mrn: "D-kept")).bodyText == "success")
            #expect(await eventually { (try? await e2e.allEvents("&status=delivered"))?.count == 1 })
            e2e.receiverAnswers.setFallback(TestHTTPResponse(status: 410, text: "gone"))
            try await e2e.createDeposit("D-gone")
            #expect(try await e2e.callback("deposit", depositCallbackForm(mrn: "D-gone")).bodyText == "success")
            #expect(await eventually { (try? await e2e.allEvents("&status=failed"))?.count == 1 })
            #expect(await eventually(timeout: .seconds(20)) { (try? await e2e.allEvents("&status=delivered"))?.isEmpty == true })
            #expect(try await e2e.allEvents().map { $0["mrn"] as? String } == ["D-gone"], "the failed event stays for redelivery")
            #expect(try await e2e.rowCount("delivery_attempts") == 1)
        }
    }

    @Test("webhooks are never sent unsigned: an order's notifyUrl needs the webhook secret")
    func neverUnsigned() async throws {
        try await withBinarySidecar(settings: ["PAYSIDECAR_WEBHOOK_URL": "", "PAYSIDECAR_WEBHOOK_SECRET": ""]) { e2e in
            let answer = try await e2e.post("/v1/payouts", json: #"{"mrn":"P-nosig","amount":5,"bankName":"b","accountName":"a","accountNumber":"1","notifyUrl":"http://127.0.0.1:9/in"}"#)
            #expect(answer.status == 422)
            #expect(try ((object(answer))["errors"] as? [[String: Any]])?.first?["field"] as? String == "notifyUrl")
            #expect(try await e2e.creates("/api/Payouts/Create") == 0)
        }
    }
}

@Suite("Start-up and the demo (the real binary)")
struct SafeDefaultsTests {
    @Test("the internal API beyond loopback without a token: one line, exit 2, unless explicitly allowed")
    func unauthenticatedBeyondLoopback() async throws {
        var environment = goodEnvironment
        environment["PAYSIDECAR_LISTEN"] = "0.0.0.0:0"
        let refused = try await runTool(["serve"], environment: environment)
        #expect(refused.status == 2)
        #expect(refused.stderr.split(separator: "\n").count == 1 && refused.stderr.contains("PAYSIDECAR_LISTEN") && refused.stderr.contains("PAYSIDECAR_API_TOKEN"))
    }

    @Test("pay-sidecar demo prints its commands when standard output is a file, not a terminal")
    func demoOutputFlushed() async throws {
        let folder = try temporaryFolder("demo")
        let output = folder.appendingPathComponent("demo.out").path
        let ports = (try await uniqueTestPort(), try await uniqueTestPort(), try await uniqueTestPort(), try await uniqueTestPort())
        let demo = try ChildProcess(paySidecarBinary().path, [
            "demo", "--gateway-listen", "127.0.0.1:\(ports.0)", "--listen", "127.0.0.1:\(ports.1)", "--callback-listen", "127.0.0.1:\(ports.2)",
            "--receiver-listen", "127.0.0.1:\(ports.3)",
        ], environment: ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"], output: output)
        defer { demo.signal(SIGKILL) }
        #expect(await eventually(timeout: .seconds(15)) {
            ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").contains("curl -s http://127.0.0.1:\(ports.1)/v1/payouts")
        }, "the commands are in the file while the demo still runs")
        demo.signal(SIGINT)
        _ = await eventually { !demo.isRunning }
    }
}
