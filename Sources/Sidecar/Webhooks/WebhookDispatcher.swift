import ConfigurationValues
import CurlHTTP
#if canImport(Glibc)
import Glibc
#endif
import Ledger
import Logging
import Orders
import ServiceLifecycle
import Synchronization
import Tracing
import Webhooks

/// Delivers outbox events as Standard Webhooks: claims due events, posts them with bounded concurrency,
/// records each attempt and schedules the next. A slow or dead receiver holds at most `perTargetLimit`
/// slots, so other receivers keep getting theirs.
///
/// Claims are short leases (PAYSIDECAR_WEBHOOK_LEASE), renewed every third of the lease for every event this
/// process holds (in flight, or claimed and waiting for a slot at its target), so a slow receiver keeps its event
/// with one process while a killed process's events go to another within one lease. A claim found taken over (this
/// process stalled or lost the database for longer than the lease) is not fought for: a waiting event is dropped,
/// an attempt in flight runs to its end and is recorded as superseded (`AttemptSettlement`).
///
/// Graceful shutdown stops claiming and waits for in-flight attempts (each bounded by the webhook timeout), their
/// claims renewed meanwhile; whatever is not delivered stays in the outbox for the next start or another replica.
final class WebhookDispatcher: Service, Sendable {
    let ledger: any Ledger
    let http: CurlClient
    let policy: RetryPolicy
    /// The signer in use now (the webhook secret may be rotated while the sidecar runs).
    let signer: @Sendable () -> WebhookSigner?
    let defaultURL: String?
    let timeout: Duration
    /// How long a claim lasts unless renewed.
    let lease: Duration
    let metrics: SidecarMetrics?
    let logger: Logger
    let maxConcurrent: Int
    let perTargetLimit: Int
    let doorbell = Doorbell()
    private let inFlight = Mutex<[String: String]>([:])  // event id -> target URL
    private let claims = Mutex(Claims())

    /// The events this process holds a claim on, and those of them whose claim a renewal found gone.
    private struct Claims {
        var held: Set<String> = []
        var lost: Set<String> = []
    }

    init(ledger: any Ledger, http: CurlClient, policy: RetryPolicy, signer: @escaping @Sendable () -> WebhookSigner?, defaultURL: String?, timeout: Duration,
         lease: Duration = .seconds(10), metrics: SidecarMetrics? = nil, logger: Logger, maxConcurrent: Int = 32, perTargetLimit: Int = 16) {
        self.ledger = ledger
        self.http = http
        self.policy = policy
        self.signer = signer
        self.defaultURL = defaultURL
        self.timeout = timeout
        self.lease = lease
        self.metrics = metrics
        self.logger = logger
        self.maxConcurrent = maxConcurrent
        self.perTargetLimit = perTargetLimit
    }

    /// New events are waiting: look now rather than at the next poll.
    func wake() { doorbell.ring() }

    /// How long a claim lasts unless renewed, in milliseconds.
    var leaseMillis: Millis { milliseconds(lease) }

    /// How often the claims held are renewed: three times per lease, so two renewals in a row may fail or come
    /// late before a claim runs out.
    var renewalInterval: Duration { lease / 3 }

    func run() async throws {
        // News from other replicas sharing the database (PostgreSQL's NOTIFY): a hint that rings the doorbell;
        // the loop below still polls, so a lost hint only costs a poll interval. The claims are renewed until the
        // last attempt has finished, through a graceful shutdown's drain.
        await withTaskGroup(of: Void.self) { watcher in
            watcher.addTask { await self.ledger.followOutbox { self.doorbell.ring() } }
            watcher.addTask { await self.renewClaimsUntilCancelled() }
            await deliverUntilShutdown()
            watcher.cancelAll()
        }
    }

    /// Renews the claims this process holds every `renewalInterval`. A renewal that fails (the database does not
    /// answer) is tried again at the next interval: a claim that ran out meanwhile is still renewed then, unless
    /// another process took the event.
    private func renewClaimsUntilCancelled() async {
        var failing = false
        while !Task.isCancelled {
            try? await Task.sleep(for: renewalInterval)
            let ids = claims.withLock { $0.held.subtracting($0.lost) }
            guard !ids.isEmpty, !Task.isCancelled else { continue }
            do {
                let renewed = try await ledger.renewEventClaims(ids: ids, until: nowMillis() + leaseMillis)
                if failing { logger.info("webhook claims renewed again", metadata: ["events": "\(renewed.count)"]) }
                failing = false
                // Only those still held: an attempt may have finished (and released its claim) during the call.
                let lost = claims.withLock { claims -> Set<String> in
                    let lost = ids.subtracting(renewed).intersection(claims.held)
                    claims.lost.formUnion(lost)
                    return lost
                }
                for id in lost.sorted() {
                    logger.warning("webhook claim taken over: this process held the event past its lease; an attempt in flight is still recorded, as superseded",
                                   metadata: ["event_id": "\(id)"])
                }
            } catch {
                if !failing {
                    logger.warning("could not renew webhook claims; trying again", metadata: ["events": "\(ids.count)", "error": "\(error)"])
                }
                failing = true
            }
        }
    }

    /// Forgets the claim on `id` (its attempt finished, or it was dropped).
    private func release(_ id: String) {
        claims.withLock { claims in
            claims.held.remove(id)
            claims.lost.remove(id)
        }
    }

    private func deliverUntilShutdown() async {
        let stopping = Atomic<Bool>(false)
        await withDiscardingTaskGroup { group in
            await withGracefulShutdownHandler {
                // Claimed events whose target is at its limit wait here for a free slot there.
                var parked: [String: [OutboxEvent]] = [:]
                while !stopping.load(ordering: .relaxed) && !Task.isCancelled {
                    var counts = inFlight.withLock { state in Dictionary(state.values.map { ($0, 1) }, uniquingKeysWith: +) }
                    var free = maxConcurrent - counts.values.reduce(0, +)
                    var started = 0
                    func start(_ event: OutboxEvent, _ target: String) {
                        counts[target, default: 0] += 1
                        free -= 1
                        started += 1
                        inFlight.withLock { $0[event.id] = target }
                        group.addTask {
                            await self.deliver(event, to: target)
                            self.inFlight.withLock { _ = $0.removeValue(forKey: event.id) }
                            self.release(event.id)
                            self.doorbell.ring()
                        }
                    }
                    for target in Array(parked.keys) where free > 0 {
                        while free > 0, (counts[target] ?? 0) < perTargetLimit, let event = parked[target]?.first {
                            parked[target]?.removeFirst()
                            // Another process took it while it waited here: it is theirs to deliver.
                            if claims.withLock({ $0.lost.contains(event.id) }) {
                                release(event.id)
                                continue
                            }
                            start(event, target)
                        }
                        if parked[target]?.isEmpty == true { parked[target] = nil }
                    }
                    let parkedCount = parked.values.reduce(0) { $0 + $1.count }
                    if free > 0, parkedCount < 4 * maxConcurrent {
                        let ours = claims.withLock { $0.held }
                        let claimed: [OutboxEvent]
                        do {
                            claimed = try await ledger.claimDueEvents(now: nowMillis(), lease: leaseMillis, limit: free, excluding: ours)
                        } catch {
                            logger.error("outbox claim failed", metadata: ["error": "\(error)"])
                            claimed = []
                        }
                        claims.withLock { $0.held.formUnion(claimed.map(\.id)) }
                        for event in claimed {
                            guard signer() != nil else {
                                release(event.id)
                                try? await ledger.failEvent(id: event.id, reason: "no webhook secret: webhooks are never sent unsigned (set PAYSIDECAR_WEBHOOK_SECRET, then redeliver)", at: nowMillis())
                                logger.warning("webhook not sent: no webhook secret", metadata: ["event_id": "\(event.id)", "mrn": "\(event.mrn)"])
                                continue
                            }
                            guard let target = event.notifyUrl ?? defaultURL else {
                                release(event.id)
                                try? await ledger.failEvent(id: event.id, reason: "no webhook target: the order has no notifyUrl and PAYSIDECAR_WEBHOOK_URL is not set", at: nowMillis())
                                logger.warning("webhook has no target", metadata: ["event_id": "\(event.id)", "mrn": "\(event.mrn)"])
                                continue
                            }
                            if (counts[target] ?? 0) >= perTargetLimit || free <= 0 {
                                parked[target, default: []].append(event)
                            } else {
                                start(event, target)
                            }
                        }
                        if !claimed.isEmpty, free > 0 { continue }  // there may be more due right now
                    }
                    if started == 0 || free <= 0 {
                        await doorbell.wait(upTo: await pollInterval())
                    }
                }
            } onGracefulShutdown: {
                stopping.store(true, ordering: .relaxed)
                self.doorbell.ring()
            }
        }
    }

    /// Until the next event is due, at most a second.
    func pollInterval() async -> Duration {
        guard let due = try? await ledger.nextDueTime() else { return .seconds(1) }
        let wait = due - nowMillis()
        return .milliseconds(max(5, min(1000, wait)))
    }

    /// One attempt, as a client span continuing the trace of the order's create (its stored `traceparent`): the
    /// webhook carries the span's own context as its `traceparent`, so the consumer's handling joins the same trace.
    /// Without a tracer the stored value goes out as it is. The target appears without its userinfo or query.
    func deliver(_ event: OutboxEvent, to url: String) async {
        await withSpan("webhook attempt", context: TraceParent.context(continuing: event.traceParent), ofKind: .client) { span in
            span.attributes["http.request.method"] = "POST"
            span.attributes["url.full"] = URLText.redacted(url)
            span.attributes["paysidecar.webhook.event_id"] = event.id
            span.attributes["paysidecar.webhook.event_type"] = event.type.rawValue
            span.attributes["paysidecar.webhook.attempt"] = event.attempts + 1
            span.attributes["paysidecar.order.mrn"] = event.mrn
            let traceParent = TraceParent.inject(span.context) ?? event.traceParent
            guard let result = await attempt(event, to: url, traceParent: traceParent) else { return }
            if let status = result.status { span.attributes["http.response.status_code"] = status }
            span.attributes["paysidecar.webhook.outcome"] = result.outcome
            if result.outcome != "delivered" { span.setStatus(SpanStatus(code: .error, message: result.outcome)) }
        }
    }

    /// Posts the event once and records the attempt; returns the answer's status and the outcome (`delivered`,
    /// `retry`, `failed`), or nil when nothing was sent.
    private func attempt(_ event: OutboxEvent, to url: String, traceParent: String?) async -> (status: Int?, outcome: String)? {
        let body = Array(event.body.utf8)
        let started = nowMillis()
        var headers: [(name: String, value: String)] = [("Content-Type", "application/json"), ("User-Agent", "pay-sidecar-webhooks")]
        // Checked when the event was claimed; should the secret be gone since, nothing is sent: the claim expires and
        // the claim loop fails the event.
        guard let signer = signer() else { return nil }
        headers += signer.headers(id: event.id, timestamp: started / 1000, body: body)
        if let traceParent { headers.append((TraceParent.header, traceParent)) }
        var statusCode: Int?
        var retryAfter: String?
        var failure: String?
        do {
            let response = try await http.execute(CurlRequest(method: "POST", url: url, headers: headers, body: body, timeout: timeout, isIdempotent: true))
            statusCode = response.status
            retryAfter = response.headers["retry-after"]
        } catch let e as CurlError {
            failure = "\(e.kind): \(e.message)"
        } catch {
            failure = "\(error)"
        }
        let attemptNumber = event.attempts + 1
        let decision = policy.decide(attemptsSoFar: attemptNumber - event.scheduleBase, status: statusCode, retryAfter: retryAfter)
        let finished = nowMillis()
        let next: NextStep
        let outcome: String
        switch decision {
        case .delivered:
            next = .delivered
            outcome = "delivered"
        case .retry(let after):
            next = .retry(at: finished + milliseconds(after))
            outcome = "retry"
        case .fail(let reason):
            next = .fail(reason: statusCode.map { "\(reason); last answer HTTP \($0)" } ?? "\(reason); last error: \(failure ?? "-")")
            outcome = "failed"
        }
        let attempt = DeliveryAttempt(eventID: event.id, attempt: attemptNumber, url: url, statusCode: statusCode, error: failure,
                                      durationMillis: finished - started, at: started)
        var superseded = false
        do {
            superseded = try await ledger.finishAttempt(attempt, next: next) == .superseded
        } catch {
            // Its claim runs out within a lease (it is no longer renewed), and the event is attempted again.
            logger.error("could not record a webhook attempt; the event will be retried", metadata: ["event_id": "\(event.id)", "error": "\(error)"])
        }
        if superseded {
            logger.notice("webhook attempt superseded: its claim had passed on (another replica's attempt, a redelivery); recorded in the event's history",
                          metadata: ["event_id": "\(event.id)", "attempt": "\(attemptNumber)", "status": "\(statusCode.map(String.init) ?? failure ?? "-")"])
        }
        // Counted after the outbox is updated, so a scrape never shows a delivery before the outbox does.
        metrics?.webhookDelivery(outcome: outcome)
        logger.info("webhook attempt", metadata: [
            "event_id": "\(event.id)", "type": "\(event.type.rawValue)", "target": "\(URLText.redacted(url))", "mrn": "\(event.mrn)", "attempt": "\(attemptNumber)",
            "status": "\(statusCode.map(String.init) ?? failure ?? "-")", "outcome": "\(next)",
        ])
        return (statusCode, outcome)
    }
}
