import GatewayProtocol
import Ledger
import Orders
import Prometheus

/// The sidecar's Prometheus metrics, in a registry of its own (so two servers in one process, as in the
/// tests, never mix their counts). `serve` also bootstraps swift-metrics with this registry, so metrics that
/// dependencies emit through swift-metrics appear on the same `/metrics`.
///
/// Every label takes values from a fixed set: routes are Hummingbird's route patterns (never the path as
/// sent), operations and outcomes are enumerations, and no mrn, URL or event id is ever a label.
public final class SidecarMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry

    let outboxPending: Gauge
    let outboxOldestAge: Gauge
    let outboxFailed: Gauge
    let reconcileDue: Gauge
    let reconcileOpen: Gauge
    let flaggedOrders: Gauge
    let ledgerUp: Gauge

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        func gauge(_ name: String, _ unit: String, _ help: String) -> Gauge {
            registry.makeGauge(descriptor: Self.name(name, unit, help))
        }
        outboxPending = gauge("outbox_pending", "events", "Webhook events not yet delivered and still being retried")
        outboxOldestAge = gauge("outbox_oldest_pending_age", "seconds", "Age of the oldest undelivered webhook event (0 when none)")
        outboxFailed = gauge("outbox_failed", "events", "Webhook events that exhausted their retries and wait for a redelivery")
        reconcileDue = gauge("reconciler_backlog", "orders", "Pending or unknown orders whose gateway query is due now")
        reconcileOpen = gauge("reconciler_open", "orders", "Pending or unknown orders the reconciler is still following")
        flaggedOrders = gauge("flagged", "orders", "Orders flagged for a person (contradictions, unsettled past the horizon)")
        ledgerUp = gauge("database", "up", "1 when the database answered the last scrape, else 0")
        registry.makeGauge(descriptor: Self.name("build", "info", "Always 1; the labels say which build runs: version, libcurl"),
                           labels: [("version", SidecarBuild.version), ("libcurl", SidecarBuild.libcurlRelease)]).set(Int64(1))
    }

    /// A metric's full name is `paysidecar_<name>_<unit>`.
    private static func name(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "paysidecar", metricName: name, unitName: unit, helpText: help)
    }
    private static var requestDescriptor: MetricNameDescriptor {
        name("http_requests", "total", "HTTP requests answered, by listener, method, route pattern and status")
    }
    private static var gatewayDescriptor: MetricNameDescriptor { name("gateway_requests", "total", "Calls to the gateway by operation and outcome") }
    private static var gatewayLatencyDescriptor: MetricNameDescriptor {
        name("gateway_request_duration", "seconds", "Time from sending a gateway call to its answer or failure")
    }
    private static var callbackDescriptor: MetricNameDescriptor {
        name("callbacks", "total", "Gateway callbacks by kind, result and (for refusals) reason")
    }
    private static var webhookDescriptor: MetricNameDescriptor { name("webhook_deliveries", "total", "Webhook delivery attempts by outcome") }
    private static var reloadDescriptor: MetricNameDescriptor {
        name("secret_reloads", "total", "Secret reloads (SIGHUP or a changed *_FILE) by result")
    }
    private static var refusedConnectionDescriptor: MetricNameDescriptor {
        name("connections_refused", "total", "Connections closed as soon as they were accepted, by listener and reason (over_capacity, address_not_allowed)")
    }
    private static var flagDescriptor: MetricNameDescriptor {
        name("order_flags", "total", "Flags raised on orders (each also sent as a *.flagged webhook), by kind and flag")
    }
    private static var reconcileDescriptor: MetricNameDescriptor {
        name("reconciler_queries", "total", "Gateway queries made by the reconciler, by what they found")
    }

    static let latencyBuckets: [Duration] = [
        .milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30),
    ]

    /// One answered HTTP request. `route` is the matched route pattern; anything else (nil, or the router's
    /// "NotFound") counts as "unmatched", so a scan of random paths cannot grow the label set.
    func request(listener: String, method: String, route: String?, status: Int) {
        let method = Self.knownMethods.contains(method) ? method : "OTHER"
        let route = route.flatMap { $0.hasPrefix("/") ? $0 : nil }
        registry.makeCounter(descriptor: Self.requestDescriptor, labels: [
            ("listener", listener), ("method", method), ("route", route ?? "unmatched"), ("status", String(status)),
        ]).increment()
    }

    private static let knownMethods: Set<String> = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

    /// One gateway call: `operation` is deposit_create, payout_create, deposit_query or payout_query;
    /// `outcome` is answered, unavailable, timeout or bad_response.
    func gatewayCall(operation: String, outcome: String, latency: Duration) {
        registry.makeCounter(descriptor: Self.gatewayDescriptor, labels: [("operation", operation), ("outcome", outcome)]).increment()
        registry.makeDurationHistogram(descriptor: Self.gatewayLatencyDescriptor, labels: [("operation", operation)], buckets: Self.latencyBuckets)
            .record(latency)
    }

    /// One connection closed when it was accepted: over_capacity or address_not_allowed.
    func connectionRefused(listener: String, reason: String) {
        registry.makeCounter(descriptor: Self.refusedConnectionDescriptor, labels: [("listener", listener), ("reason", reason)]).increment()
    }

    /// One flag raised on an order.
    func orderFlagged(kind: OrderKind, flag: FlagCode) {
        registry.makeCounter(descriptor: Self.flagDescriptor, labels: [("kind", kind.rawValue), ("flag", flag.rawValue)]).increment()
    }

    /// One callback: `result` accepted (settled or confirmed), duplicate, flagged (stored with a new flag), rejected or error; `reason` the refusal's
    /// code (e.g. bad_signature, amount_mismatch), "none" otherwise.
    func callback(kind: String, result: String, reason: String = "none") {
        registry.makeCounter(descriptor: Self.callbackDescriptor, labels: [("kind", kind), ("result", result), ("reason", reason)]).increment()
    }

    /// One webhook attempt: delivered, retry or failed.
    func webhookDelivery(outcome: String) {
        registry.makeCounter(descriptor: Self.webhookDescriptor, labels: [("outcome", outcome)]).increment()
    }

    /// One secret reload: unchanged, rotated or error.
    func secretReload(result: String) {
        registry.makeCounter(descriptor: Self.reloadDescriptor, labels: [("result", result)]).increment()
    }

    /// One reconciler query: settled, pending, not_found or failed.
    func reconcilerQuery(result: String) {
        registry.makeCounter(descriptor: Self.reconcileDescriptor, labels: [("result", result)]).increment()
    }

    /// The text exposition, with the gauges read from the ledger just now. When the database does not
    /// answer, `paysidecar_database_up` is 0 and the other gauges keep their last values.
    func render(ledger: any Ledger, now: Millis) async -> [UInt8] {
        if let stats = try? await ledger.statistics(now: now) {
            ledgerUp.set(Int64(1))
            outboxPending.set(Int64(stats.pendingEvents))
            outboxOldestAge.set(stats.oldestPendingEventAt.map { Double(max(0, now - $0)) / 1000 } ?? 0)
            outboxFailed.set(Int64(stats.failedEvents))
            reconcileDue.set(Int64(stats.reconcileDue))
            reconcileOpen.set(Int64(stats.reconcileOpen))
            flaggedOrders.set(Int64(stats.flaggedOrders))
        } else {
            ledgerUp.set(Int64(0))
        }
        return registry.emitToBuffer()
    }
}
