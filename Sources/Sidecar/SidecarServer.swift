import ConfigurationValues
import CurlHTTP
import GatewayProtocol
import Hummingbird
import Ledger
import LedgerPostgres
import Logging
import NIOCore
import Orders
import ServiceLifecycle
import Synchronization
import Webhooks

/// The sidecar: one HTTP client for the gateway, and two listeners, never one:
/// the internal API (can move money) and the callback listener (faces the gateway).
///
/// Run its `services` in a `ServiceGroup`, HTTP client first so it outlives the listeners on shutdown.
public final class SidecarServer: Sendable {
    public let configuration: SidecarConfiguration
    public let http: CurlClient
    public let ledger: any Ledger
    /// The PostgreSQL ledger's connection pool, a service of its own; nil with SQLite.
    let database: PostgresLedger?
    /// The secrets in use; `reloadSecrets` replaces them.
    public let secrets: SecretStore
    /// What `/metrics` shows.
    public let metrics: SidecarMetrics
    let dispatcher: WebhookDispatcher
    let desk: OrderDesk
    let reconciler: Reconciler
    let logger: Logger
    let internalApp: Application<RouterResponder<SidecarRequestContext>>
    let callbackApp: Application<RouterResponder<SidecarRequestContext>>
    let ports: PortBox

    /// Opens the ledger and builds the listeners. Throws `ConfigurationError` naming
    /// PAYSIDECAR_DATABASE_URL when the database cannot be opened: a SQLite file that cannot be opened or is in
    /// use, a PostgreSQL server that does not answer within PAYSIDECAR_DATABASE_TIMEOUT (one direct connection and
    /// `SELECT 1`, before any pool exists), refuses the credentials, or whose schema cannot be migrated.
    ///
    /// `tracing`: a tracer is bootstrapped (traces are exported), so each request gets a span. Without one the
    /// listeners skip the tracing middleware, whose work would only feed the no-op tracer.
    public init(configuration: SidecarConfiguration, logger: Logger, metrics: SidecarMetrics = SidecarMetrics(), tracing: Bool = false) async throws {
        self.configuration = configuration
        self.logger = logger
        self.metrics = metrics
        let secrets = SecretStore(configuration.secrets, grace: configuration.secretGracePeriod)
        self.secrets = secrets
        switch configuration.database {
        case .sqlite(let path, let durable):
            do {
                self.ledger = try SQLiteLedger(path: path, durableCommits: durable)
            } catch {
                throw ConfigurationError(Setting.databaseURL.variable, "\(error)")
            }
            self.database = nil
        case .postgres(let settings):
            do {
                let database = try await PostgresLedger.open(settings, logger: logger)
                self.ledger = database
                self.database = database
            } catch {
                throw ConfigurationError(Setting.databaseURL.variable, error.message)
            }
        }
        var httpConfiguration = CurlClient.Configuration()
        httpConfiguration.timeout = configuration.gatewayTimeout
        httpConfiguration.connectTimeout = min(configuration.gatewayTimeout, .seconds(5))
        httpConfiguration.userAgent = "pay-sidecar"
        self.http = try CurlClient(configuration: httpConfiguration, logger: logger)
        let gateway = GatewayClient(http: http, baseURL: configuration.gatewayURL, secrets: secrets, timeout: configuration.gatewayTimeout, metrics: metrics)

        let dispatcher = WebhookDispatcher(
            ledger: ledger, http: http, policy: RetryPolicy(schedule: configuration.webhookRetrySchedule),
            signer: { secrets.webhookSigner }, defaultURL: configuration.webhookURL,
            timeout: configuration.webhookTimeout, lease: configuration.webhookLease, metrics: metrics, logger: logger
        )
        self.dispatcher = dispatcher
        let desk = OrderDesk(ledger: ledger, policy: OrderPolicy(configuration), onEmitted: { dispatcher.wake() }, metrics: metrics, logger: logger)
        self.desk = desk
        self.reconciler = Reconciler(ledger: ledger, desk: desk, gateway: gateway, configuration: configuration, metrics: metrics, logger: logger)
        let internalRouter = SidecarServer.internalRouter(configuration: configuration, secrets: secrets, gateway: gateway, ledger: ledger, desk: desk,
                                                          dispatcher: dispatcher, metrics: metrics, logger: logger, tracing: tracing)
        let callbackRouter = SidecarServer.callbackRouter(configuration: configuration, secrets: secrets, ledger: ledger, desk: desk,
                                                          metrics: metrics, logger: logger, tracing: tracing)
        let portBox = PortBox()
        self.ports = portBox
        // With no trusted proxy in front, a callback's source is its connection's peer: the allowlist applies
        // when the connection is accepted (and again per request, where the reason is answered and counted).
        let acceptAllowlist = configuration.trustedProxies == nil ? configuration.callbackAllowedIPs : nil
        self.internalApp = Application(
            router: internalRouter,
            server: .guardedHTTP1(ListenerLimits(configuration), gate: ConnectionGate(limit: configuration.maxConnections)) { reason in
                metrics.connectionRefused(listener: "internal", reason: reason)
            },
            configuration: .init(address: .hostname(configuration.listen.host, port: configuration.listen.port), serverName: nil),
            onServerRunning: { portBox.report(internalPort: $0.localAddress?.port ?? 0) },
            logger: logger
        )
        self.callbackApp = Application(
            router: callbackRouter,
            server: .guardedHTTP1(ListenerLimits(configuration, allowlist: acceptAllowlist), gate: ConnectionGate(limit: configuration.maxConnections)) { reason in
                metrics.connectionRefused(listener: "callback", reason: reason)
            },
            configuration: .init(address: .hostname(configuration.callbackListen.host, port: configuration.callbackListen.port), serverName: nil),
            onServerRunning: { portBox.report(callbackPort: $0.localAddress?.port ?? 0) },
            logger: logger
        )
    }

    /// The services to run, in start order: the HTTP client, the PostgreSQL connection pool or else the SQLite
    /// journal's checkpointer, the webhook dispatcher, the reconciler, the secret file watcher, the callback listener,
    /// the internal API. Shutdown runs in reverse: the listeners stop taking requests first, then the workers finish
    /// what they hold, the database pool and the HTTP client last.
    public var services: [any Service] {
        let storage: any Service = database ?? Checkpointer(ledger: ledger, interval: .milliseconds(100), logger: logger)
        return [
            http, storage, dispatcher, reconciler, SecretFileWatcher(server: self),
            ListenerService(app: callbackApp, ports: ports), ListenerService(app: internalApp, ports: ports),
        ]
    }

    /// How often the `*_FILE` secrets are checked for a change.
    public static let secretFilePollInterval: Duration = .seconds(2)

    /// Reads the secrets again (from their `*_FILE`s; flags and the environment do not change while the
    /// process runs) and puts what changed in use, the previous values staying valid for the grace period.
    /// A reload that fails validation changes nothing: the error names the setting, never a value.
    @discardableResult
    public func reloadSecrets(trigger: String) -> Result<SecretChange, ConfigurationError> {
        let loaded: SecretSet
        do {
            loaded = try configuration.reloadSecrets()
        } catch {
            metrics.secretReload(result: "error")
            logger.error("secret reload failed; the secrets in use are unchanged", metadata: ["trigger": "\(trigger)", "error": "\(error)"])
            return .failure(error)
        }
        let change = secrets.replace(with: loaded)
        metrics.secretReload(result: change.isEmpty ? "unchanged" : "rotated")
        if change.isEmpty {
            logger.info("secrets reloaded: nothing changed", metadata: ["trigger": "\(trigger)"])
        } else {
            logger.notice("secrets rotated", metadata: [
                "trigger": "\(trigger)", "changed": "\(change)", "grace_period": "\(DurationText.format(secrets.grace))",
            ])
        }
        return .success(change)
    }

    /// The internal API's router (routes are listed by the OpenAPI parity test).
    static func internalRouter(configuration: SidecarConfiguration, secrets: SecretStore, gateway: GatewayClient, ledger: any Ledger, desk: OrderDesk,
                               dispatcher: WebhookDispatcher, metrics: SidecarMetrics, logger: Logger, tracing: Bool = false) -> Router<SidecarRequestContext> {
        let router = Router(context: SidecarRequestContext.self)
        // Outermost, so that the request's log line is written inside its span (and carries its trace id); it takes
        // the caller's `traceparent`, so the request continues the caller's trace.
        if tracing { router.add(middleware: TracingMiddleware<SidecarRequestContext>()) }
        router.add(middleware: RequestLogMiddleware(logger: logger, listener: "internal", metrics: metrics))
        if configuration.apiToken != nil { router.add(middleware: BearerTokenMiddleware(secrets: secrets)) }
        InternalAPI(configuration: configuration, secrets: secrets, gateway: gateway, ledger: ledger, desk: desk, readiness: { await ledger.isHealthy() })
            .register(on: router)
        router.get("/metrics") { _, _ in
            let text = await metrics.render(ledger: ledger, now: nowMillis())
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(bytes: text)))
        }
        EventsAPI(ledger: ledger, onRedeliver: { dispatcher.wake() }).register(on: router)
        ConsoleAPI(configuration: configuration, ledger: ledger, secrets: secrets, onRedeliver: { dispatcher.wake() }).register(on: router)
        // A leaked previous secret stops working now instead of at the end of its grace period.
        router.post("/v1/secrets/revoke-previous") { _, _ in
            let revoked = secrets.revokePrevious()
            logger.notice("previous secrets revoked", metadata: ["revoked": "\(revoked)"])
            return json(["revoked": .array(revoked.identifiers.map(JSONValue.string))])
        }
        return router
    }

    /// The callback listener serves only the gateway's callbacks and `/healthz`; any internal route is 404 here.
    static func callbackRouter(configuration: SidecarConfiguration, secrets: SecretStore, ledger: any Ledger, desk: OrderDesk,
                               metrics: SidecarMetrics, logger: Logger, tracing: Bool = false) -> Router<SidecarRequestContext> {
        let router = Router(context: SidecarRequestContext.self)
        if tracing {
            router.add(middleware: UntrustedTraceContextMiddleware())
            router.add(middleware: TracingMiddleware<SidecarRequestContext>())
        }
        router.add(middleware: RequestLogMiddleware(logger: logger, listener: "callback", metrics: metrics))
        router.get("/healthz") { _, _ in json(["status": .string("ok")]) }
        CallbackAPI(configuration: configuration, secrets: secrets, ledger: ledger, desk: desk, rejections: RejectionSampler(), metrics: metrics, logger: logger)
            .register(on: router)
        return router
    }

    /// The ports both listeners bound (useful when configured with port 0). Throws if a listener failed
    /// to start (e.g. its address is in use).
    public func boundPorts() async throws -> ListenerPorts {
        try await ports.wait()
    }
}

/// The ports the two listeners bound.
public struct ListenerPorts: Sendable, Hashable {
    public let internalAPI: Int
    public let callback: Int
}

/// Collects the ports the listeners report once bound, for whoever waits for both; or the error of a
/// listener that could not start.
final class PortBox: Sendable {
    private struct State {
        var internalPort: Int?
        var callbackPort: Int?
        var failure: (any Error)?
        var waiters: [CheckedContinuation<ListenerPorts, any Error>] = []
        var outcome: Result<ListenerPorts, any Error>? {
            if let failure { return .failure(failure) }
            guard let internalPort, let callbackPort else { return nil }
            return .success(ListenerPorts(internalAPI: internalPort, callback: callbackPort))
        }
    }
    private let state = Mutex(State())

    func report(internalPort: Int? = nil, callbackPort: Int? = nil) {
        settle { state in
            if let internalPort { state.internalPort = internalPort }
            if let callbackPort { state.callbackPort = callbackPort }
        }
    }

    func fail(_ error: any Error) {
        settle { state in if state.failure == nil { state.failure = error } }
    }

    private func settle(_ change: (inout State) -> Void) {
        let (waiters, outcome) = state.withLock { state -> ([CheckedContinuation<ListenerPorts, any Error>], Result<ListenerPorts, any Error>?) in
            change(&state)
            guard let outcome = state.outcome else { return ([], nil) }
            defer { state.waiters.removeAll() }
            return (state.waiters, outcome)
        }
        if let outcome { for waiter in waiters { waiter.resume(with: outcome) } }
    }

    func wait() async throws -> ListenerPorts {
        try await withCheckedThrowingContinuation { continuation in
            let outcome = state.withLock { state -> Result<ListenerPorts, any Error>? in
                if let outcome = state.outcome { return outcome }
                state.waiters.append(continuation)
                return nil
            }
            if let outcome { continuation.resume(with: outcome) }
        }
    }
}

/// Runs a Hummingbird application as a service in an outer group (no signal handling of its own).
struct ListenerService<App: ApplicationProtocol>: Service {
    let app: App
    let ports: PortBox
    func run() async throws {
        do {
            try await withTaskExecutorPreference(EventLoopTaskExecutor(group: app.eventLoopGroup)) {
                try await app.runService(gracefulShutdownSignals: [])
            }
        } catch {
            ports.fail(error)
            throw error
        }
    }
}
