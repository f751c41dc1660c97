import ConfigurationValues
import CurlHTTP
import GatewayProtocol
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// The sidecar: one HTTP client for the gateway, and two listeners, never one:
/// the internal API (can move money) and the callback listener (faces the gateway).
///
/// Run its `services` in a `ServiceGroup`, HTTP client first so it outlives the listeners on shutdown.
public final class SidecarServer: Sendable {
    public let configuration: SidecarConfiguration
    public let http: CurlClient
    let logger: Logger
    let internalApp: Application<RouterResponder<SidecarRequestContext>>
    let callbackApp: Application<RouterResponder<SidecarRequestContext>>
    private let ports: PortBox

    public init(configuration: SidecarConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        var httpConfiguration = CurlClient.Configuration()
        httpConfiguration.timeout = configuration.gatewayTimeout
        httpConfiguration.connectTimeout = min(configuration.gatewayTimeout, .seconds(5))
        httpConfiguration.userAgent = "pay-sidecar"
        self.http = try CurlClient(configuration: httpConfiguration, logger: logger)
        let gateway = GatewayClient(http: http, baseURL: configuration.gatewayURL, secret: configuration.secretKey, timeout: configuration.gatewayTimeout)

        let internalRouter = SidecarServer.internalRouter(configuration: configuration, gateway: gateway, logger: logger)
        let callbackRouter = SidecarServer.callbackRouter(logger: logger)
        let portBox = PortBox()
        self.ports = portBox
        self.internalApp = Application(
            router: internalRouter,
            configuration: .init(address: .hostname(configuration.listen.host, port: configuration.listen.port), serverName: nil),
            onServerRunning: { portBox.report(internalPort: $0.localAddress?.port ?? 0) },
            logger: logger
        )
        self.callbackApp = Application(
            router: callbackRouter,
            configuration: .init(address: .hostname(configuration.callbackListen.host, port: configuration.callbackListen.port), serverName: nil),
            onServerRunning: { portBox.report(callbackPort: $0.localAddress?.port ?? 0) },
            logger: logger
        )
    }

    /// The services to run, in start order: the HTTP client, then the callback listener, then the internal API.
    public var services: [any Service] { [http, ListenerService(app: callbackApp), ListenerService(app: internalApp)] }

    /// The internal API's router (routes are listed by the OpenAPI parity test).
    static func internalRouter(configuration: SidecarConfiguration, gateway: GatewayClient, logger: Logger) -> Router<SidecarRequestContext> {
        let router = Router(context: SidecarRequestContext.self)
        router.add(middleware: RequestLogMiddleware(logger: logger, listener: "internal"))
        if let token = configuration.apiToken { router.add(middleware: BearerTokenMiddleware(token: token)) }
        InternalAPI(configuration: configuration, gateway: gateway, readiness: { true }).register(on: router)
        return router
    }

    /// The callback listener serves only the gateway's callbacks and `/healthz`; any internal route is 404 here.
    static func callbackRouter(logger: Logger) -> Router<SidecarRequestContext> {
        let router = Router(context: SidecarRequestContext.self)
        router.add(middleware: RequestLogMiddleware(logger: logger, listener: "callback"))
        router.get("/healthz") { _, _ in json(["status": .string("ok")]) }
        return router
    }

    /// The ports both listeners bound (useful when configured with port 0).
    public func boundPorts() async -> ListenerPorts {
        await ports.wait()
    }
}

/// The ports the two listeners bound.
public struct ListenerPorts: Sendable, Hashable {
    public let internalAPI: Int
    public let callback: Int
}

/// Collects the ports the listeners report once bound, for whoever waits for both.
private final class PortBox: Sendable {
    private struct State {
        var internalPort: Int?
        var callbackPort: Int?
        var waiters: [CheckedContinuation<ListenerPorts, Never>] = []
        var ready: ListenerPorts? {
            guard let internalPort, let callbackPort else { return nil }
            return ListenerPorts(internalAPI: internalPort, callback: callbackPort)
        }
    }
    private let state = Mutex(State())

    func report(internalPort: Int? = nil, callbackPort: Int? = nil) {
        let (waiters, ready) = state.withLock { state -> ([CheckedContinuation<ListenerPorts, Never>], ListenerPorts?) in
            if let internalPort { state.internalPort = internalPort }
            if let callbackPort { state.callbackPort = callbackPort }
            guard let ready = state.ready else { return ([], nil) }
            defer { state.waiters.removeAll() }
            return (state.waiters, ready)
        }
        if let ready { for waiter in waiters { waiter.resume(returning: ready) } }
    }

    func wait() async -> ListenerPorts {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> ListenerPorts? in
                if let ready = state.ready { return ready }
                state.waiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}

/// Runs a Hummingbird application as a service in an outer group (no signal handling of its own).
struct ListenerService<App: ApplicationProtocol>: Service {
    let app: App
    func run() async throws { try await app.runService(gracefulShutdownSignals: []) }
}
