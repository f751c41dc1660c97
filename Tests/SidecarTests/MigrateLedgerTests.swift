import CurlHTTP
import Foundation
import PostgresTestSupport
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `pay-sidecar migrate-ledger` end to end, as an operator moves a live sidecar: a SQLite sidecar with a mix of
/// orders, stopped, copied, and a PostgreSQL sidecar carrying on from the copy.
@Suite("Moving from SQLite to PostgreSQL (migrate-ledger)",
       .enabled(if: PostgresTestDatabase.isConfigured, "PAYSIDECAR_TEST_POSTGRES_URL is not set: migrate-ledger was not tested"))
struct MigrateLedgerTests {
    @Test("""
        a stopped SQLite sidecar's ledger copied into PostgreSQL: a replayed callback for a tombstoned order emits nothing, pending \
        events are delivered with their ids, an unknown order is reconciled; a source in use and a second copy are refused; no password printed
        """)
    func migrate() async throws {
        try await withReplicaSet(count: 1, settings: ["PAYSIDECAR_RECONCILE_AFTER": "1s"]) { (replicas: ReplicaSet) async throws in
            let folder = try temporaryFolder("migrate")
            let sqlite = "sqlite://\(folder.path)/ledger.db"
            let password = "not-printed-pw-7731"
            let target = replicas.database.replacingOccurrences(of: "://postgres@", with: "://postgres:\(password)@")
            try #require(target.contains(password), "the test server's URL names the user postgres: \(replicas.database)")
            let sqliteSettings = [
                "PAYSIDECAR_GATEWAY_URL": replicas.gateway, "PAYSIDECAR_DATABASE_URL": sqlite, "PAYSIDECAR_GATEWAY_TIMEOUT": "2s",
                "PAYSIDECAR_LOG_LEVEL": "debug",
            ]
            func endpoints(_ process: SidecarProcess) -> ReplicaEndpoints {
                ReplicaEndpoints(client: replicas.client, gateway: replicas.gateway, api: process.api, callbackListener: process.callbacks,
                                 receiver: replicas.receiver)
            }

            // 1. A deposit settled, delivered, then pruned (a 1 s journal retention): a tombstone is all that is left.
            let first = try await SidecarProcess(webhookURL: "\(replicas.receiver.baseURL)/hooks",
                                                 settings: sqliteSettings.merging(["PAYSIDECAR_JOURNAL_RETENTION": "1s"]) { $1 })
            try await first.start(replicas.client)
            let one = endpoints(first)
            try await one.createDeposit("D-pruned")
            #expect(try await one.callback("deposit", depositCallbackForm(mrn: "D-pruned")).bodyText == "success")
            #expect(try await eventually(timeout: .seconds(20)) { try await one.journal("deposit", "D-pruned")["pruned"] as? Bool == true }, "pruned")
            #expect(await first.signal(SIGTERM) == .exited(0))

            // 2. The same file, normal retention; the receiver is down, so events stay pending, retried every 200 ms.
            replicas.receiverAnswers.setFallback(TestHTTPResponse(status: 500, text: "down"))
            let receiverDown = Array(repeating: "200ms", count: 100).joined(separator: ",")
            let second = try await SidecarProcess(webhookURL: "\(replicas.receiver.baseURL)/hooks",
                                                  settings: sqliteSettings.merging(["PAYSIDECAR_WEBHOOK_RETRY_SCHEDULE": receiverDown,
                                                                                    "PAYSIDECAR_RECONCILE_AFTER": "3s"]) { $1 })
            try await second.start(replicas.client)
            let two = endpoints(second)
            try await two.createPayout("P-open")
            try await two.createDeposit("D-paid")
            #expect(try await two.callback("deposit", depositCallbackForm(mrn: "D-paid")).bodyText == "success")
            try await two.createDeposit("D-flagged")
            #expect(try await two.callback("deposit", depositCallbackForm(mrn: "D-flagged", amount: "150.00")).bodyText == "success")
            #expect(try await two.callback("deposit", depositCallbackForm(mrn: "D-stranger")).bodyText == "success", "an order it never created")
            // Two settlements and the flags: each event tried, refused, tried again.
            #expect(try await eventually {
                let pending = try await two.allEvents("&status=pending")
                return pending.count >= 4 && pending.allSatisfy { ($0["attempts"] as? Int ?? 0) >= 2 }
            })
            let pending = try await two.allEvents("&status=pending")
            let pendingIDs = Set(pending.compactMap { $0["id"] as? String })
            // Last, a create whose outcome is unknown (the gateway answers after the sidecar's 2 s): followed by query.
            try await two.addFault(#"{"path":"/api/Pay/Create","kind":"delay","value":"3s","count":1}"#)
            let unknown = try await two.post("/v1/deposits", json: #"{"mrn":"D-unknown","amount":"100","channelId":2,"returnUrl":"https://shop.example/r"}"#)
            #expect(unknown.status == 504 && (try? object(unknown)["orderStatus"] as? String) == "unknown", "\(unknown.status) \(unknown.bodyText)")

            // The source is in use: refused, one line, nothing copied.
            let inUse = try await runTool(["migrate-ledger", "--from", sqlite, "--to", target])
            #expect(inUse.status == 2 && inUse.stderr.hasPrefix("pay-sidecar: migrate-ledger: --from:") && inUse.stderr.contains("in use"), "\(inUse.stderr)")
            #expect(inUse.stderr.split(separator: "\n").count == 1)
            #expect(await second.signal(SIGTERM) == .exited(0))
            // The customer pays while the sidecar is being moved: the gateway's callback reaches no one.
            try await two.simPost("/_sim/deposits/D-unknown/pay")

            // 3. The copy.
            let copied = try await runTool(["migrate-ledger", "--from", sqlite, "--to", target])
            #expect(copied.status == 0, "\(copied.stderr)")
            #expect(copied.stdout.contains("into postgres://127.0.0.1:"), "\(copied.stdout)")
            #expect(copied.stdout.contains("tombstones:        1"), "\(copied.stdout)")
            #expect(copied.stdout.contains("(\(pendingIDs.count) pending, 0 failed, 1 delivered)"), "\(copied.stdout)")
            #expect(!(copied.stdout + copied.stderr + inUse.stderr).contains(password), "the password never prints")
            let copiedAt = ContinuousClock.now

            // 4. A PostgreSQL sidecar on the copy.
            replicas.receiverAnswers.setFallback(TestHTTPResponse(status: 204))
            try await replicas.start()
            let pg = replicas[0]
            #expect(try await eventually(timeout: .seconds(20)) { try await pg.allEvents("&status=pending").isEmpty }, "the pending events delivered")
            let delivered = Set(replicas.receiver.requests.filter { $0.receivedAt > copiedAt }.compactMap { $0.header("webhook-id") })
            #expect(delivered.isSuperset(of: pendingIDs), "with the ids they had: \(pendingIDs.subtracting(delivered))")
            // The unknown order, paid meanwhile: the reconciler finds it when its next query comes (3 s after the create timed out).
            #expect(try await eventually(timeout: .seconds(30)) { try await pg.allEvents("&mrn=D-unknown&type=deposit.succeeded").count == 1 },
                    "the unknown order reconciled")
            let text = try await pg.get("/metrics").bodyText
            #expect((metric(text, "paysidecar_reconciler_queries_total", ["result": "settled"]) ?? 0) >= 1, "settled by the reconciler's query")
            // A replayed callback for the pruned order: success, nothing emitted.
            let before = try await pg.allEvents().count
            #expect(try await pg.callback("deposit", depositCallbackForm(mrn: "D-pruned")).bodyText == "success")
            #expect(try await pg.journal("deposit", "D-pruned")["pruned"] as? Bool == true)
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await pg.allEvents().count == before, "the replay emitted nothing")
            #expect(try await pg.journal("deposit", "D-flagged")["flag"] as? String == "amount_mismatch")
            #expect(try await pg.post("/v1/payouts", json: #"{"mrn":"P-open","amount":500,"bankName":"b","accountName":"a","accountNumber":"1"}"#).status == 202,
                    "a retried create replays its journaled answer")
            #expect(try await pg.creates("/api/Payouts/Create") == 1, "not sent again")

            // 5. A second copy into the same database is refused.
            let again = try await runTool(["migrate-ledger", "--from", sqlite, "--to", target])
            #expect(again.status == 2 && again.stderr.contains("already holds a ledger"), "\(again.stderr)")
            #expect(again.stderr.split(separator: "\n").count == 1 && !again.stderr.contains(password))
            for process in [first, second] { expectNoSecrets(in: process.log, TestMerchant.allSecrets) }
        }
    }
}
