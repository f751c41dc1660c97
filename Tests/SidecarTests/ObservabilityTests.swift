import CurlHTTP
import Foundation
import Sidecar
import TestSupport
import Testing

/// One sample of the Prometheus text format.
struct PrometheusSample: Hashable {
    var name: String
    var labels: [String: String]
    var value: Double
}

/// A strict reader of the Prometheus text exposition format (version 0.0.4): every line is a `# HELP`,
/// a `# TYPE` or a sample `name{label="value",...} number`; a sample's family must have been typed first.
func parsePrometheus(_ text: String) throws -> [PrometheusSample] {
    struct Malformed: Error, CustomStringConvertible { let line: String; var description: String { "malformed line: \(line)" } }
    let name = #/[a-zA-Z_:][a-zA-Z0-9_:]*/#
    var typed: [String: String] = [:]
    var samples: [PrometheusSample] = []
    for line in text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init) {
        if line.hasPrefix("# HELP ") { continue }
        if let m = line.wholeMatch(of: #/# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)/#) {
            typed[String(m.1)] = String(m.2)
            continue
        }
        guard let m = line.wholeMatch(of: #/([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)/#) else { throw Malformed(line: line) }
        var labels: [String: String] = [:]
        if let block = m.2 {
            let inner = block.dropFirst().dropLast()
            var rest = Substring(inner)
            while !rest.isEmpty {
                guard let pair = rest.prefixMatch(of: #/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/#) else { throw Malformed(line: line) }
                labels[String(pair.1)] = String(pair.2)
                rest = rest[pair.range.upperBound...]
            }
        }
        let sampleName = String(m.1)
        let family = [sampleName, sampleName.replacing(#/_(bucket|sum|count)$/#, with: "")].first { typed[$0] != nil }
        guard family != nil, sampleName.wholeMatch(of: name) != nil else { throw Malformed(line: "untyped sample: \(line)") }
        let valueText = String(m.3)
        guard let value = valueText == "+Inf" ? Double.infinity : Double(valueText) else { throw Malformed(line: line) }
        samples.append(PrometheusSample(name: sampleName, labels: labels, value: value))
    }
    return samples
}

extension Array where Element == PrometheusSample {
    /// The value of the sample with this name and (at least) these labels; nil when absent.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        first { sample in sample.name == name && labels.allSatisfy { key, value in sample.labels[key] == value } }?.value
    }
}

@Suite("Metrics")
struct ObservabilityTests {
    @Test("/metrics counts requests, gateway calls, callbacks and webhooks with bounded labels, and parses as Prometheus text")
    func metrics() async throws {
        try await withSidecar(settings: ["PAYSIDECAR_API_TOKEN": TestMerchant.apiToken]) { (e2e: E2E) async throws in
            let auth = [("Authorization", "Bearer \(TestMerchant.apiToken)"), ("Content-Type", "application/json")]
            let payout = try await e2e.post("/v1/payouts", json: #"{"mrn":"P-metrics-1","amount":5,"bankName":"b","accountName":"a","accountNumber":"1"}"#, headers: auth)
            #expect(payout.status == 202)
            _ = try await e2e.get("/v1/no-such-route/P-metrics-secret-path", headers: auth)
            _ = try await e2e.get("/v1/payouts/P-metrics-1", headers: auth)
            // Callbacks: accepted, duplicate, bad signature, amount mismatch (stored, settled and flagged).
            let good = payoutCallbackForm(mrn: "P-metrics-1", amount: "5")
            #expect(try await e2e.callback("payout", good).bodyText == "success")
            #expect(try await e2e.callback("payout", good).bodyText == "success")
            #expect(try await e2e.callback("payout", payoutCallbackForm(mrn: "P-metrics-1", amount: "5", sign: String(repeating: "0", count: 32))).status == 401)
            let other = try await e2e.post("/v1/payouts", json: #"{"mrn":"P-metrics-2","amount":7,"bankName":"b","accountName":"a","accountNumber":"1"}"#, headers: auth)
            #expect(other.status == 202)
            let mismatched = try await e2e.post("/v1/payouts", json: #"{"mrn":"P-metrics-3","amount":7,"bankName":"b","accountName":"a","accountNumber":"1"}"#, headers: auth)
            #expect(mismatched.status == 202)
            #expect(try await e2e.callback("payout", payoutCallbackForm(mrn: "P-metrics-3", amount: "70")).bodyText == "success")
            // The deliveries are counted once the outbox has recorded them: P-metrics-1, and P-metrics-3's settlement and flag.
            #expect(await eventually {
                (try? parsePrometheus(await e2e.get("/metrics").bodyText))?.value("paysidecar_webhook_deliveries_total", ["outcome": "delivered"]) == 3
            })
            #expect(e2e.receiver.requests.count == 3)

            // Open without the token, as probes are.
            let response = try await e2e.get("/metrics")
            #expect(response.status == 200)
            #expect(response.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
            let text = response.bodyText
            let samples = try parsePrometheus(text)
            let requests = "paysidecar_http_requests_total"
            #expect(samples.value(requests, ["listener": "internal", "method": "POST", "route": "/v1/payouts", "status": "202"]) == 3)
            #expect(samples.value(requests, ["listener": "internal", "route": "/v1/payouts/{mrn}", "status": "200"]) == 1)
            #expect(samples.value(requests, ["listener": "internal", "route": "unmatched", "status": "404"]) == 1, "\(text)")
            #expect(samples.value(requests, ["listener": "callback", "route": "/callbacks/payout", "status": "200"]) == 3)
            #expect(samples.value("paysidecar_gateway_requests_total", ["operation": "payout_create", "outcome": "answered"]) == 3)
            #expect(samples.value("paysidecar_gateway_requests_total", ["operation": "payout_query", "outcome": "answered"]) == 1)
            #expect(samples.value("paysidecar_gateway_request_duration_seconds_count", ["operation": "payout_create"]) == 3)
            #expect(samples.value("paysidecar_gateway_request_duration_seconds_bucket", ["operation": "payout_create", "le": "+Inf"]) == 3)
            #expect(samples.value("paysidecar_callbacks_total", ["kind": "payout", "result": "accepted"]) == 2)
            #expect(samples.value("paysidecar_callbacks_total", ["kind": "payout", "result": "duplicate"]) == 1)
            #expect(samples.value("paysidecar_callbacks_total", ["kind": "payout", "result": "rejected", "reason": "bad_signature"]) == 1)
            #expect(samples.value("paysidecar_order_flags_total", ["kind": "payout", "flag": "amount_mismatch"]) == 1)
            #expect(samples.value("paysidecar_flagged_orders") == 1)
            #expect(samples.value("paysidecar_webhook_deliveries_total", ["outcome": "delivered"]) == 3)
            #expect(samples.value("paysidecar_database_up") == 1)
            #expect(samples.value("paysidecar_build_info", ["version": SidecarBuild.version]) == 1)
            // P-metrics-2 is pending and followed by the reconciler, not yet due (PAYSIDECAR_RECONCILE_AFTER is 60s).
            #expect(samples.value("paysidecar_reconciler_open_orders") == 1)
            #expect(samples.value("paysidecar_reconciler_backlog_orders") == 0)
            #expect(samples.value("paysidecar_outbox_pending_events") == 0)
            // Bounded labels: no mrn, path or secret ever becomes a label value.
            #expect(!text.contains("P-metrics"))
            expectNoSecrets(in: text, TestMerchant.allSecrets)

            // The same text through the Python reference parser.
            let folder = try temporaryFolder("metrics")
            let file = folder.appendingPathComponent("metrics.txt")
            try text.write(to: file, atomically: true, encoding: .utf8)
            let (status, output) = try await runProgram(["python3", "-c", """
                import sys
                from prometheus_client.parser import text_string_to_metric_families
                families = list(text_string_to_metric_families(open(sys.argv[1]).read()))
                print("families", len(families))
                """, file.path])
            #expect(status == 0, "prometheus_client: \(output) (install with: pip install prometheus_client)")
            #expect(output.contains("families"))
        }
    }

    @Test("outbox depth and the oldest undelivered event's age follow a receiver that is down")
    func outboxGauges() async throws {
        // Retries a second apart: no event can exhaust its schedule (and leave `pending`) before the scrape.
        try await withSidecar(settings: ["PAYSIDECAR_WEBHOOK_RETRY_SCHEDULE": "1s,1s,1s,1s,1s"]) { (e2e: E2E) async throws in
            e2e.receiverAnswers.setFallback(TestHTTPResponse(status: 503, text: "down"))
            for n in 0..<3 { #expect(try await e2e.callback("deposit", depositCallbackForm(mrn: "D-gauge-\(n)")).bodyText == "success") }
            try await Task.sleep(for: .milliseconds(300))
            var samples = try parsePrometheus(try await e2e.get("/metrics").bodyText)
            #expect(samples.value("paysidecar_outbox_pending_events") == 3)
            #expect((samples.value("paysidecar_outbox_oldest_pending_age_seconds") ?? 0) >= 0.2)
            // Each event's first attempt has been answered 503 (waited for: under load an attempt can still be in flight).
            #expect(await eventually {
                samples = (try? parsePrometheus(try await e2e.get("/metrics").bodyText)) ?? []
                return (samples.value("paysidecar_webhook_deliveries_total", ["outcome": "retry"]) ?? 0) >= 3
            })
            #expect(samples.value("paysidecar_outbox_pending_events") == 3)
            e2e.receiverAnswers.setFallback(TestHTTPResponse(status: 204))
            #expect(await eventually {
                samples = (try? parsePrometheus(try await e2e.get("/metrics").bodyText)) ?? []
                // A delivery is counted just after the outbox recorded it.
                return samples.value("paysidecar_outbox_pending_events") == 0
                    && samples.value("paysidecar_webhook_deliveries_total", ["outcome": "delivered"]) == 3
            })
            #expect(samples.value("paysidecar_outbox_oldest_pending_age_seconds") == 0)
        }
    }
}
