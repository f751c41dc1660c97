import CurlHTTP
import Foundation
import TestSupport
import Testing

@testable import Sidecar

/// Whether this build has the trace exporter (the package's `OpenTelemetry` trait, which `make test` enables).
let buildHasTraceExporter: Bool = {
    #if OpenTelemetry
    return true
    #else
    return false
    #endif
}()

/// Spans exported after 50 ms, not swift-otel's default 5 s, so the tests wait for little.
let fastExport = ["OTEL_BSP_SCHEDULE_DELAY": "50"]

@Suite("Trace context")
struct TraceParentTests {
    @Test("only a well-formed version-00 traceparent is kept (it goes out in webhooks)", arguments: [
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true),
        ("00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", false),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", false),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false),
        ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false),
        ("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", false),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nx", false),
        ("00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01", false),
        ("", false),
    ])
    func validation(value: String, valid: Bool) {
        #expect((TraceParent.validated(value) != nil) == valid)
    }

    @Test("a failed gateway call's outcome in its span: refused or 5xx unavailable; sent and then lost unknown; timeout; bad_response")
    func gatewayOutcomes() {
        func outcome(_ kind: GatewayCallFailure.Kind, sent: Bool, answered: Bool) -> String {
            GatewayClient.spanOutcome(GatewayCallFailure(kind: kind, detail: "-", requestSent: sent), answered: answered)
        }
        #expect(outcome(.unavailable, sent: false, answered: false) == "unavailable")
        #expect(outcome(.unavailable, sent: true, answered: true) == "unavailable", "a 5xx")
        #expect(outcome(.unavailable, sent: true, answered: false) == "unknown", "the connection lost after sending: the order may exist")
        #expect(outcome(.timeout, sent: true, answered: false) == "timeout")
        #expect(outcome(.badResponse, sent: true, answered: true) == "bad_response")
    }

    @Test("without a tracer, nothing is injected and a stored value is no parent: the webhook carries it as it came")
    func noTracer() {
        #expect(TraceParent.current() == nil)
        #expect(TraceParent.inject(TraceParent.context(continuing: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")) == nil)
    }
}

/// Traces through the real binary: spans exported over OTLP/HTTP to a collector on loopback, decoded and checked;
/// a caller's trace continued into the webhook's `traceparent`; trace ids in the JSON log lines.
@Suite("Traces (the real binary, OTLP/HTTP)", .serialized)
struct TracingTests {
    @Test("a payout create, its callback and its webhook: spans in the caller's trace, with the attributes the README lists and nothing secret",
          .enabled(if: buildHasTraceExporter))
    func payoutTrace() async throws {
        let collector = try await OTLPCollector.start()
        defer { Task { try? await collector.stop() } }
        let caller = callerTraceParent()
        let account = (number: "6222020200112233445", name: "张三丰", bank: "中国工商银行")
        let settings = quietGateway.merging(fastExport) { $1 }.merging([
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
        ]) { $1 }
        try await withBinarySidecar(settings: settings) { (e2e: BinaryE2E) async throws in
            let created = try await e2e.post("/v1/payouts", json: """
                {"mrn":"P-traced","amount":500,"bankName":"\(account.bank)","accountName":"\(account.name)","accountNumber":"\(account.number)"}
                """, headers: [("Content-Type", "application/json"), ("traceparent", caller.header)])
            #expect(created.status == 202, "\(created.bodyText)")
            // The gateway's callback, sent by the test; a trace context sent to the public listener is not believed.
            let forged = callerTraceParent()
            let callback = try await e2e.callback("payout", payoutCallbackForm(mrn: "P-traced"),
                                                  headers: [("Content-Type", "application/x-www-form-urlencoded"), ("traceparent", forged.header)])
            #expect(callback.bodyText == "success")
            #expect(await eventually { e2e.webhooks("payout.succeeded", mrn: "P-traced").count == 1 })

            // The webhook continues the caller's trace: its traceparent is the attempt span's, in the caller's trace.
            let webhook = try #require(e2e.receiver.requests.first)
            let sent = try #require(parseTraceParent(webhook.header("traceparent")), "the webhook carries a traceparent")
            #expect(sent.traceID == caller.traceID)
            #expect(webhook.header("webhook-id") != nil && webhook.header("webhook-signature") != nil, "the Standard Webhooks headers stay")

            func spans() -> [CollectedSpan] { collector.spans }
            let found = await eventually {
                let all = spans()
                return all.contains { $0.name == "webhook attempt" } && all.contains { $0.attributes["http.route"] == "/callbacks/payout" }
                    && all.contains { $0.attributes["http.route"] == "/v1/payouts" }
            }
            #expect(found, "spans arrived: \(spans())")
            let all = spans()
            #expect(all.allSatisfy { $0.serviceName == "pay-sidecar" }, "OTEL_SERVICE_NAME's default")

            // The create: a server span under the caller's span, its journal commits and the gateway call under it.
            let server = try #require(all.first { $0.attributes["http.route"] == "/v1/payouts" })
            #expect(server.traceID == caller.traceID && server.parentSpanID == caller.spanID && server.kind == 2)
            #expect(server.attributes["http.request.method"] == "POST" && server.attributes["http.response.status_code"] == "202")
            let commits = all.filter { $0.name == "journal commit" && $0.parentSpanID == server.spanID }
            #expect(commits.count == 2, "the intent and the outcome: \(commits)")
            #expect(commits.allSatisfy { $0.traceID == caller.traceID && $0.attributes["paysidecar.order.mrn"] == "P-traced" })
            #expect(Set(commits.compactMap { $0.attributes["paysidecar.order.state"] }) == ["sending", "pending"])
            #expect(commits.allSatisfy { $0.attributes["paysidecar.journal.result"] == "committed" && $0.attributes["paysidecar.order.kind"] == "payout" })
            let gateway = try #require(all.first { $0.name == "POST /api/Payouts/Create" })
            #expect(gateway.parentSpanID == server.spanID && gateway.traceID == caller.traceID && gateway.kind == 3)
            #expect(gateway.attributes["http.request.method"] == "POST" && gateway.attributes["url.template"] == "/api/Payouts/Create")
            #expect(gateway.attributes["http.response.status_code"] == "200" && gateway.attributes["paysidecar.gateway.outcome"] == "answered")
            #expect(gateway.attributes["paysidecar.gateway.operation"] == "payout_create")

            // The callback: a trace of its own (the forged context was dropped), its durable commit under it.
            let callbackSpan = try #require(all.first { $0.attributes["http.route"] == "/callbacks/payout" })
            #expect(callbackSpan.traceID != forged.traceID && callbackSpan.traceID != caller.traceID && callbackSpan.parentSpanID == nil)
            let durable = try #require(all.first { $0.name == "journal commit" && $0.parentSpanID == callbackSpan.spanID })
            #expect(durable.attributes["paysidecar.journal.durable"] == "true" && durable.attributes["paysidecar.journal.events"] == "1")
            #expect(durable.attributes["paysidecar.order.state"] == "succeeded")

            // The webhook attempt: a client span under the create's request span; its context is the header sent.
            let attempt = try #require(all.first { $0.name == "webhook attempt" })
            #expect(attempt.traceID == caller.traceID && attempt.parentSpanID == server.spanID && attempt.spanID == sent.spanID && attempt.kind == 3)
            #expect(attempt.attributes["http.response.status_code"] == "200" && attempt.attributes["paysidecar.webhook.attempt"] == "1")
            #expect(attempt.attributes["paysidecar.webhook.event_type"] == "payout.succeeded")
            #expect(attempt.attributes["paysidecar.webhook.event_id"] == webhook.header("webhook-id"))
            #expect(attempt.attributes["paysidecar.webhook.outcome"] == "delivered")
            #expect(attempt.attributes["url.full"] == "\(e2e.receiver.baseURL)/hooks")

            // Every JSON log line written inside the create's request carries its trace and span ids.
            let lines = e2e.log.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            let requestLine = try #require(lines.first { $0["msg"] as? String == "request" && $0["route"] as? String == "/v1/payouts" })
            #expect(requestLine["trace_id"] as? String == caller.traceID && requestLine["span_id"] as? String == server.spanID)
            let attemptLine = try #require(lines.first { $0["msg"] as? String == "webhook attempt" })
            #expect(attemptLine["trace_id"] as? String == caller.traceID && attemptLine["span_id"] as? String == attempt.spanID)
            let callbackLine = try #require(lines.first { ($0["msg"] as? String)?.hasPrefix("callback ") == true })
            #expect(callbackLine["trace_id"] as? String == callbackSpan.traceID)
            #expect(lines.filter { $0["trace_id"] != nil }.allSatisfy { ($0["trace_id"] as? String)?.count == 32 && $0["trace_flags"] == nil })

            // No secret, signature, appKey or account detail in any attribute of any span (nor anywhere in the exports).
            let gatewayBody = try #require(try await e2e.gatewayRequests().first { $0["path"] as? String == "/api/Payouts/Create" }?["body"] as? String)
            let gatewaySign = try #require((try JSONSerialization.jsonObject(with: Data(gatewayBody.utf8)) as? [String: Any])?["sign"] as? String)
            let callbackSign = try #require(payoutCallbackForm(mrn: "P-traced").split(separator: "&").first { $0.hasPrefix("sign=") }?.dropFirst(5))
            let webhookSignature = try #require(webhook.header("webhook-signature")?.dropFirst(3))
            let forbidden = TestMerchant.allSecrets + [TestMerchant.appKey, gatewaySign, String(callbackSign), String(webhookSignature),
                                                       account.number, account.name, account.bank]
            for span in all {
                for (key, value) in span.attributes {
                    for secret in forbidden where value.contains(secret) { Issue.record("span \(span.name): \(key) holds a secret or account detail") }
                }
            }
            let exported = collector.requests.map(\.bodyText).joined(separator: "\n")
            for secret in forbidden where exported.contains(secret) { Issue.record("an export holds a secret or account detail") }
            #expect(!all.contains { $0.attributes.keys.contains("url.query") && $0.attributes["url.query"]?.contains("sign") == true })
        }
    }

    @Test("a query's gateway span names the route template, never the signed query string; a timeout is outcome timeout",
          .enabled(if: buildHasTraceExporter))
    func gatewayQueryAndTimeout() async throws {
        let collector = try await OTLPCollector.start()
        defer { Task { try? await collector.stop() } }
        let settings = quietGateway.merging(fastExport) { $1 }.merging([
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json", "PAYSIDECAR_GATEWAY_TIMEOUT": "2s",
            "PAYSIDECAR_RECONCILE_AFTER": "1h",
        ]) { $1 }
        try await withBinarySidecar(settings: settings) { (e2e: BinaryE2E) async throws in
            try await e2e.createPayout("P-query")
            #expect(try await e2e.get("/v1/payouts/P-query").status == 200)
            try await e2e.addFault(#"{"path":"/api/Payouts/Create","kind":"delay","value":"4s","count":1}"#)
            let late = try await e2e.post("/v1/payouts", json: #"{"mrn":"P-late","amount":500,"bankName":"b","accountName":"a","accountNumber":"1"}"#)
            #expect(late.status == 504)
            #expect(await eventually { collector.spans.contains { $0.attributes["http.route"] == "/v1/payouts/{mrn}" } && collector.spans.filter { $0.name == "POST /api/Payouts/Create" }.count == 2 })
            let spans = collector.spans
            let query = try #require(spans.first { $0.name == "GET /api/Payouts/Query" })
            #expect(query.attributes["url.template"] == "/api/Payouts/Query" && query.attributes["paysidecar.gateway.outcome"] == "answered")
            #expect(spans.allSatisfy { span in !span.attributes.values.contains { $0.contains("sign=") || $0.contains("appKey") } })
            let server = try #require(spans.first { $0.attributes["http.route"] == "/v1/payouts/{mrn}" })
            #expect(server.name == "/v1/payouts/{mrn}", "named by the route pattern, not the path with the mrn")
            let timedOut = try #require(spans.first { $0.name == "POST /api/Payouts/Create" && $0.attributes["paysidecar.gateway.outcome"] != "answered" })
            #expect(timedOut.attributes["paysidecar.gateway.outcome"] == "timeout" && timedOut.statusCode == 2 && timedOut.attributes["http.response.status_code"] == nil)
        }
    }

    @Test("without OTEL_EXPORTER_OTLP_ENDPOINT nothing is exported; a caller's valid traceparent still reaches the webhook as it came, a malformed one never")
    func noEndpoint() async throws {
        let collector = try await OTLPCollector.start()
        defer { Task { try? await collector.stop() } }
        let caller = callerTraceParent()
        // Every other OTLP variable points at the collector: none of them switches traces on.
        let settings = quietGateway.merging(fastExport) { $1 }.merging([
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json", "OTEL_SERVICE_NAME": "nothing-expected",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "\(collector.endpoint)/v1/metrics", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "\(collector.endpoint)/v1/logs",
        ]) { $1 }
        try await withBinarySidecar(settings: settings) { (e2e: BinaryE2E) async throws in
            try await e2e.createPayout("P-plain", headers: [("Content-Type", "application/json"), ("traceparent", caller.header)])
            try await e2e.createPayout("P-garbage", headers: [("Content-Type", "application/json"), ("traceparent", "00-\(caller.traceID)-zz-01")])
            for mrn in ["P-plain", "P-garbage"] { #expect(try await e2e.callback("payout", payoutCallbackForm(mrn: mrn)).bodyText == "success") }
            #expect(await eventually { e2e.receiver.requests.count == 2 })
            let byMrn = Dictionary(uniqueKeysWithValues: e2e.receiver.requests.compactMap { request -> (String, ReceivedHTTPRequest)? in
                guard let body = try? JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any],
                    let mrn = (body["data"] as? [String: Any])?["mrn"] as? String else { return nil }
                return (mrn, request)
            })
            #expect(byMrn["P-plain"]?.header("traceparent") == caller.header, "passed on as it came")
            #expect(byMrn["P-garbage"]?.header("traceparent") == nil, "never anything but a valid traceparent")
            try await Task.sleep(for: .milliseconds(300))
            #expect(collector.requests.isEmpty, "nothing was sent to the collector")
            let lines = e2e.log.split(separator: "\n")
            #expect(!lines.contains { $0.contains("\"trace_id\"") }, "no trace ids without traces")
            #expect(lines.contains { $0.contains("pay-sidecar started") && $0.contains("\"traces\":\"off\"") })
        }
        #expect(collector.requests.isEmpty)
    }

    @Test("OTLP/HTTP with protobuf, the default encoding: exports arrive at /v1/traces", .enabled(if: buildHasTraceExporter))
    func protobuf() async throws {
        let collector = try await OTLPCollector.start()
        defer { Task { try? await collector.stop() } }
        let settings = quietGateway.merging(fastExport) { $1 }.merging(["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "\(collector.endpoint)/v1/traces"]) { $1 }
        try await withBinarySidecar(settings: settings) { (e2e: BinaryE2E) async throws in
            #expect(try await e2e.get("/v1/channels").status == 200)
            #expect(await eventually { collector.requests.contains { $0.uri == "/v1/traces" } })
            #expect(collector.requests.allSatisfy { $0.header("content-type") == "application/x-protobuf" })
            #expect(e2e.log.contains("\"traces\":\"otlp\""))
        }
    }

    @Test("an OTLP protocol this build does not export (gRPC): one line naming the variable, exit 2", .enabled(if: buildHasTraceExporter))
    func grpcRefused() async throws {
        var environment = goodEnvironment
        environment["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:1"
        environment["OTEL_EXPORTER_OTLP_PROTOCOL"] = "grpc"
        let result = try await runTool([], environment: environment)
        #expect(result.status == 2)
        #expect(result.stderr.split(separator: "\n").count == 1 && result.stderr.hasPrefix("pay-sidecar: OTEL_EXPORTER_OTLP_PROTOCOL:"), "\(result.stderr)")
    }

    @Test("OTEL_EXPORTER_OTLP_ENDPOINT in a build without the exporter: one warning, and the sidecar runs untraced",
          .enabled(if: !buildHasTraceExporter))
    func endpointWithoutExporter() async throws {
        let settings = quietGateway.merging(["OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"]) { $1 }
        try await withBinarySidecar(settings: settings) { (e2e: BinaryE2E) async throws in
            #expect(try await e2e.get("/v1/channels").status == 200)
            let warnings = e2e.log.split(separator: "\n").filter { $0.contains("this build has no trace exporter") }
            #expect(warnings.count == 1 && warnings.first?.contains("\"level\":\"warning\"") == true)
        }
    }
}
