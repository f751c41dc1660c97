import CurlHTTP
import Foundation
import TestSupport
import Testing

@Suite("Webhooks out")
struct WebhookTests {
    @Test("Standard Webhooks headers, verified by the independent Python package standardwebhooks")
    func verifiedByPython() async throws {
        try await withSidecar { (e2e: E2E) async throws in
            for i in 0..<3 {
                try await e2e.createDeposit("D-py-\(i)")
                _ = try await e2e.callback("deposit", depositCallbackForm(mrn: "D-py-\(i)"))
            }
            try await e2e.createPayout("P-py")
            _ = try await e2e.callback("payout", payoutCallbackForm(mrn: "P-py"))
            #expect(await eventually { e2e.receiver.requests.count == 4 })
            let requests = e2e.receiver.requests.map { r -> [String: String] in
                ["id": r.header("webhook-id") ?? "", "timestamp": r.header("webhook-timestamp") ?? "", "signature": r.header("webhook-signature") ?? "", "body": r.bodyText]
            }
            for r in e2e.receiver.requests {
                #expect(r.header("webhook-id")?.hasPrefix("evt_") == true)
                #expect(r.header("webhook-signature")?.hasPrefix("v1,") == true)
                #expect(r.header("content-type") == "application/json")
            }
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sw-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let data = folder.appendingPathComponent("requests.json")
            try JSONSerialization.data(withJSONObject: requests).write(to: data)
            let script = folder.appendingPathComponent("verify.py")
            try """
                import json, sys
                from standardwebhooks.webhooks import Webhook
                wh = Webhook(sys.argv[1])
                for r in json.load(open(sys.argv[2])):
                    payload = wh.verify(r["body"], {"webhook-id": r["id"], "webhook-timestamp": r["timestamp"], "webhook-signature": r["signature"]})
                    assert payload["type"] in ("deposit.succeeded", "payout.succeeded"), payload
                    try:
                        wh.verify(r["body"] + " ", {"webhook-id": r["id"], "webhook-timestamp": r["timestamp"], "webhook-signature": r["signature"]})
                        sys.exit("a changed body verified")
                    except Exception:
                        pass
                print("verified", len(json.load(open(sys.argv[2]))))
                """.write(to: script, atomically: true, encoding: .utf8)
            let (status, output) = try await runProgram(["python3", script.path, TestMerchant.webhookSecret, data.path])
            #expect(status == 0, "python standardwebhooks: \(output) (install with: pip install standardwebhooks)")
            #expect(output.contains("verified 4"))
        }
    }

    @Test("retried until success, with one webhook-id; every attempt listed")
    func retryUntilSuccess() async throws {
        try await withSidecar { (e2e: E2E) async throws in
            e2e.receiverAnswers.set([TestHTTPResponse(status: 500, text: "oops"), TestHTTPResponse(status: 502, text: "proxy"), TestHTTPResponse(status: 200, text: "ok")])
            _ = try await e2e.callback("deposit", depositCallbackForm(mrn: "D-retry"))
            #expect(await eventually { e2e.receiver.requests.count == 3 })
            #expect(Set(e2e.receiver.requests.map { $0.header("webhook-id") }).count == 1)
            let id = try #require(e2e.receiver.requests.first?.header("webhook-id"))
            #expect(await eventually { (try? await e2e.event(id))?["status"] as? String == "delivered" })
            let event = try await e2e.event(id)
            let attempts = try #require(event["deliveryAttempts"] as? [[String: Any]])
            #expect(attempts.map { $0["statusCode"] as? Int } == [500, 502, 200])
            #expect(event["attempts"] as? Int == 3)
        }
    }

    @Test("410 fails the event at once")
    func gone() async throws {
        try await withSidecar { (e2e: E2E) async throws in
            e2e.receiverAnswers.setFallback(TestHTTPResponse(status: 410, text: "gone"))
            _ = try await e2e.callback("deposit", depositCallbackForm(mrn: "D-410"))
            let id = try await waitForEventID(e2e)
            #expect(await eventually { (try? await e2e.event(id))?["status"] as? String == "failed" })
            try await Task.sleep(for: .milliseconds(400))
            #expect(e2e.receiver.requests.count == 1)
            #expect((try await e2e.event(id)["lastError"] as? String)?.contains("410") == true)
        }
    }

    @Test("Retry-After on 503 is honoured over a shorter schedule")
    func retryAfter() async throws {
        try await withSidecar { (e2e: E2E) async throws in
            e2e.receiverAnswers.set([TestHTTPResponse(status: 503, headers: [("Retry-After", "1")], text: "busy")])
            _ = try await e2e.callback("deposit", depositCallbackForm(mrn: "D-ra"))
            #expect(await eventually { e2e.receiver.requests.count == 2 })
            let id = try #require(e2e.receiver.requests.first?.header("webhook-id"))
            #expect(await eventually { (try? await e2e.event(id))?["status"] as? String == "delivered" })
            let attempts = try #require(try await e2e.event(id)["deliveryAttempts"] as? [[String: Any]])
            let times = attempts.compactMap { ($0["at"] as? String).flatMap { try? Date($0, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true)) } }
            #expect(times.count == 2)
            if times.count == 2 { #expect(times[1].timeIntervalSince(times[0]) >= 0.95, "waited for Retry-After, not the 100 ms schedule") }
        }
    }

    @Test("schedule used up: failed and listed; redeliver sends it again with the same webhook-id")
    func exhaustedThenRedeliver() async throws {
        try await withSidecar(settings: ["PAYSIDECAR_WEBHOOK_RETRY_SCHEDULE": "50ms,50ms"]) { (e2e: E2E) async throws in
            e2e.receiverAnswers.setFallback(TestHTTPResponse(status: 500, text: "down"))
            _ = try await e2e.callback("payout", payoutCallbackForm(mrn: "P-exh"))
            let id = try await waitForEventID(e2e)
            #expect(await eventually { (try? await e2e.event(id))?["status"] as? String == "failed" })
            #expect(e2e.receiver.requests.count == 3)
            let failed = try await e2e.allEvents("&status=failed")
            #expect(failed.map { $0["id"] as? String } == [id])
            e2e.receiverAnswers.setFallback(TestHTTPResponse(status: 204))
            let redeliver = try await e2e.client.execute(CurlRequest(method: "POST", url: "\(e2e.api)/v1/events/\(id)/redeliver"))
            #expect(redeliver.status == 202)
            #expect(await eventually { (try? await e2e.event(id))?["status"] as? String == "delivered" })
            #expect(e2e.receiver.requests.count == 4)
            #expect(Set(e2e.receiver.requests.map { $0.header("webhook-id") }) == [id])
            #expect(try await e2e.client.execute(CurlRequest(method: "POST", url: "\(e2e.api)/v1/events/evt_nope/redeliver")).status == 404)
        }
    }

    @Test("an event with no target is kept as failed with a clear reason")
    func noTarget() async throws {
        try await withSidecar(settings: ["PAYSIDECAR_WEBHOOK_URL": ""]) { (e2e: E2E) async throws in
            _ = try await e2e.callback("deposit", depositCallbackForm(mrn: "D-none"))
            let id = try await waitForEventID(e2e)
            #expect(await eventually { (try? await e2e.event(id))?["status"] as? String == "failed" })
            #expect((try await e2e.event(id)["lastError"] as? String)?.contains("no webhook target") == true)
        }
    }

    @Test("events API: filters by status, type and mrn; pages with a cursor; 404 and 422 as problems")
    func eventsAPI() async throws {
        try await withSidecar { (e2e: E2E) async throws in
            for i in 0..<5 { _ = try await e2e.callback("deposit", depositCallbackForm(mrn: "D-list-\(i)")) }
            try await e2e.createPayout("P-list")
            _ = try await e2e.callback("payout", payoutCallbackForm(mrn: "P-list"))
            #expect(await eventually { e2e.receiver.requests.count == 6 })
            let page = try object(try await e2e.get("/v1/events?limit=2"))
            #expect((page["data"] as? [Any])?.count == 2)
            #expect(page["hasMore"] as? Bool == true)
            #expect(try await e2e.allEvents().count == 6)
            #expect(try await e2e.allEvents("&type=payout.succeeded").count == 1)
            #expect(try await e2e.allEvents("&type=deposit.flagged").count == 5, "callbacks for deposits nobody created are flags")
            #expect(try await e2e.allEvents("&mrn=D-list-3").count == 1)
            #expect(await eventually { (try? await e2e.allEvents("&status=delivered").count) == 6 })
            #expect(try await e2e.get("/v1/events/evt_missing").status == 404)
            #expect(try await e2e.get("/v1/events?status=lost").status == 422)
            #expect(try await e2e.get("/v1/events?limit=1000").status == 422)
        }
    }

    @Test("receiver down while 200 callbacks arrive, then up: every event is delivered")
    func receiverDownThenUp() async throws {
        try await withSidecar(settings: ["PAYSIDECAR_WEBHOOK_RETRY_SCHEDULE": String(repeating: "200ms,", count: 40) + "200ms"]) { (e2e: E2E) async throws in
            e2e.receiverAnswers.setFallback(TestHTTPResponse(status: 503, text: "maintenance"))
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<200 {
                    group.addTask {
                        let response = try await e2e.callback("deposit", depositCallbackForm(mrn: "D-bulk-\(i)"))
                        precondition(response.bodyText == "success", response.bodyText)
                    }
                    if i % 20 == 19 { try await group.waitForAll() }
                }
                try await group.waitForAll()
            }
            try await Task.sleep(for: .milliseconds(300))
            e2e.receiverAnswers.setFallback(TestHTTPResponse(status: 200, text: "ok"))
            #expect(await eventually(timeout: .seconds(30)) {
                Set(e2e.receiver.requests.filter { _ in true }.compactMap { r -> String? in
                    guard let body = try? JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any] else { return nil }
                    return (body["data"] as? [String: Any])?["mrn"] as? String
                }).count == 200
            })
            #expect(await eventually(timeout: .seconds(10)) { (try? await e2e.allEvents("&status=delivered").count) == 200 })
        }
    }

    @Test("a slow receiver does not hold up another")
    func slowReceiver() async throws {
        let slow = try await TestHTTPServer.start { _ in TestHTTPResponse(status: 200, text: "late", delay: .seconds(3)) }
        try await withSidecar(settings: ["PAYSIDECAR_WEBHOOK_TIMEOUT": "10s"]) { (e2e: E2E) async throws in
            for i in 0..<40 {
                _ = try await e2e.post("/v1/payouts", json: #"{"mrn":"P-slow-\#(i)","amount":1,"bankName":"b","accountName":"a","accountNumber":"1","notifyUrl":"\#(slow.baseURL)/slow"}"#)
                _ = try await e2e.client.execute(CurlRequest(method: "POST", url: e2e.gateway + "/_sim/payouts/P-slow-\(i)/complete"))
            }
            #expect(await eventually { slow.requests.count >= 8 })
            _ = try await e2e.callback("deposit", depositCallbackForm(mrn: "D-fast"))
            #expect(await eventually(timeout: .seconds(2)) { e2e.receiver.requests.count == 1 }, "the fast receiver is served while the slow one holds its slots")
            #expect(slow.requests.count < 40, "the fast one did not wait for the slow one's queue")
        }
        try await slow.stop()
    }
}

func waitForEventID(_ e2e: E2E) async throws -> String {
    var id: String?
    _ = await eventually { id = (try? await e2e.allEvents())?.first?["id"] as? String; return id != nil }
    return try #require(id)
}
