import CurlHTTP
import Foundation
import PostgresTestSupport
import TestSupport
import Testing

/// Contract section 10 end to end: sidecars sharing one PostgreSQL database, and what an outage of that
/// database looks like from outside. Runs when PAYSIDECAR_TEST_POSTGRES_URL is set (CI sets it); otherwise
/// this suite shows as skipped.
@Suite("Several replicas on PostgreSQL", .enabled(if: PostgresTestDatabase.isConfigured, "PAYSIDECAR_TEST_POSTGRES_URL is not set: the replicas were not tested"))
struct ReplicaTests {
    @Test("two replicas share the journal: a create at one is in progress at the other, a callback at either settles it once, one webhook")
    func sharedJournal() async throws {
        try await PostgresTestDatabase.withFreshDatabase { (url: String) async throws in
            let shared = ["PAYSIDECAR_DATABASE_URL": url, "PAYSIDECAR_GATEWAY_TIMEOUT": "30s", "PAYSIDECAR_DATABASE_TIMEOUT": "30s",
                          "PAYSIDECAR_DATABASE_POOL_SIZE": "3"]
            try await withSidecar(settings: shared) { (a: E2E) async throws in
                try await withSidecar(settings: shared) { (b: E2E) async throws in
                    // The create is held at a's gateway; the same create at b finds it journaled and in flight.
                    try await a.addFault(#"{"path":"/api/Payouts/Create","kind":"delay","value":"3s","count":1}"#)
                    let body = #"{"mrn":"P-shared","amount":500,"bankName":"b","accountName":"a","accountNumber":"1"}"#
                    async let first = a.post("/v1/payouts", json: body)
                    #expect(await eventually { (try? await a.creates("/api/Payouts/Create")) == 1 })
                    let second = try await b.post("/v1/payouts", json: body)
                    #expect(try second.status == 409 && object(second)["code"] as? String == "request_in_progress", "\(second.bodyText)")
                    #expect(try await first.status == 202)
                    #expect(try await b.post("/v1/payouts", json: body).status == 202, "b replays a's answer")
                    #expect(try await b.creates("/api/Payouts/Create") == 0, "b never sent it")
                    // The gateway's callback reaches b, then (a retry) a: verified against the shared journal.
                    #expect(try await b.callback("payout", payoutCallbackForm(mrn: "P-shared")).bodyText == "success")
                    #expect(try await a.callback("payout", payoutCallbackForm(mrn: "P-shared")).bodyText == "success")
                    #expect(await eventually { a.receiver.requests.count + b.receiver.requests.count == 1 })
                    try await Task.sleep(for: .milliseconds(500))
                    #expect(a.receiver.requests.count + b.receiver.requests.count == 1, "one payment, one event, delivered by one replica")
                    #expect(try await a.journal("payout", "P-shared")["state"] as? String == "succeeded")
                    // A callback with a tampered amount is flagged at either replica, against the order a journaled.
                    #expect(try await b.callback("payout", payoutCallbackForm(mrn: "P-shared", amount: "5000")).bodyText == "success")
                    #expect(try await eventually { try await a.journal("payout", "P-shared")["flag"] as? String == "amount_mismatch" })
                }
            }
        }
    }

    @Test("the database goes away: /readyz and requests answer 503 within the timeout, /healthz stays 200, nothing crashes")
    func outage() async throws {
        try await PostgresTestDatabase.withFreshDatabase { (url: String) async throws in
            let settings = ["PAYSIDECAR_DATABASE_URL": url, "PAYSIDECAR_DATABASE_TIMEOUT": "2s", "PAYSIDECAR_DATABASE_POOL_SIZE": "3"]
            try await withSidecar(settings: settings) { (e2e: E2E) async throws in
                #expect(try await e2e.get("/readyz").status == 200)
                try await e2e.createPayout("P-before")
                try await PostgresTestDatabase.drop(url)
                #expect(await eventually(timeout: .seconds(15)) { (try? await e2e.get("/readyz"))?.status == 503 })
                let started = ContinuousClock.now
                let create = try await e2e.post("/v1/payouts", json: #"{"mrn":"P-during","amount":7,"bankName":"b","accountName":"a","accountNumber":"1"}"#)
                #expect(try create.status == 503 && object(create)["code"] as? String == "storage_unavailable", "\(create.status) \(create.bodyText)")
                // Well above the 2 s deadline (a loaded machine), far below the minute the pool alone would wait.
                #expect(ContinuousClock.now - started < .seconds(20), "answered after \(ContinuousClock.now - started)")
                #expect(try await e2e.creates("/api/Payouts/Create") == 1, "nothing sent without a journal")
                #expect(try await e2e.get("/healthz").status == 200, "the process is up")
            }
        }
    }
}
