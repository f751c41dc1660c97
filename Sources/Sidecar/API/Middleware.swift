import ConfigurationValues
import GatewayProtocol
import HTTPTypes
import Hummingbird
import Logging

/// One log line per request: request id, method, route, mrn, status, gateway latency, duration.
/// Also answers every error as problem+json, so callers never see an empty 404 or an HTML 500.
struct RequestLogMiddleware: RouterMiddleware {
    typealias Context = SidecarRequestContext
    let logger: Logger
    let listener: String
    let metrics: SidecarMetrics?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let requestID = Self.requestID(from: request)
        var response: Response
        do {
            response = try await next(request, context)
        } catch let problem as Problem {
            response = try problem.response(from: request, context: context)
        } catch let error as HTTPError {
            var problem = Problem(error.status, code: Self.code(for: error.status), title: error.status.reasonPhrase, detail: error.body ?? error.status.reasonPhrase)
            if error.status == .notFound { problem = .notFound }
            response = try problem.response(from: request, context: context)
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        } catch {
            logger.error("unhandled error", metadata: ["request_id": "\(requestID)", "error_type": "\(type(of: error))"])
            response = try Problem.internalError.response(from: request, context: context)
        }
        response.headers[.requestID] = requestID
        // An `Upgrade` request (Java's HttpClient and `curl --http2` offer h2c on plain http) is answered as
        // HTTP/1.1, but the HTTP/1 parser stops reading the connection after it: without this, the client's
        // next request on the same connection would wait forever. Closing makes it open a fresh one.
        if request.headers[.upgrade] != nil { response.headers[.connection] = "close" }
        // The line's fields cost more than the handler's own work: built only when the line is written.
        if logger.logLevel <= .info {
            var metadata: Logger.Metadata = [
                "request_id": "\(requestID)",
                "listener": "\(listener)",
                "method": "\(request.method.rawValue)",
                "route": "\(context.endpointPath ?? request.uri.path)",
                "status": "\(response.status.code)",
                "duration_ms": "\(Self.milliseconds(ContinuousClock.now - start))",
            ]
            if let mrn = context.trace.mrn { metadata["mrn"] = "\(mrn)" }
            if let latency = context.trace.gatewayLatency { metadata["gateway_latency_ms"] = "\(Self.milliseconds(latency))" }
            logger.info("request", metadata: metadata)
        }
        metrics?.request(listener: listener, method: request.method.rawValue, route: context.endpointPath, status: Int(response.status.code))
        return response
    }

    static func code(for status: HTTPResponse.Status) -> String {
        switch status {
        case .notFound: return "not_found"
        case .methodNotAllowed: return "method_not_allowed"
        case .contentTooLarge: return "payload_too_large"
        case .badRequest: return "bad_request"
        default: return "http_\(status.code)"
        }
    }

    /// The caller's `X-Request-Id` when it is short and printable, else a new random one.
    static func requestID(from request: Request) -> String {
        if let given = request.headers[.requestID], (1...128).contains(given.utf8.count),
            given.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        {
            return given
        }
        // 64 random bits as 16 hex digits: one draw from the system's generator (one getrandom call).
        var bits = UInt64.random(in: .min ... .max)
        let hex: StaticString = "0123456789abcdef"
        var digits = [UInt8](repeating: 0, count: 16)
        for index in 0..<16 {
            digits[index] = hex.utf8Start[Int(bits & 0xF)]
            bits >>= 4
        }
        return String(decoding: digits, as: UTF8.self)
    }

    static func milliseconds(_ d: Duration) -> String {
        let micros = d.components.seconds * 1_000_000 + d.components.attoseconds / 1_000_000_000_000
        return "\(micros / 1000).\(String(micros % 1000 + 1000).dropFirst())"
    }
}

/// `PAYSIDECAR_API_TOKEN`: internal callers send `Authorization: Bearer <token>`; health, readiness and
/// metrics stay open so probes need no secret.
struct BearerTokenMiddleware: RouterMiddleware {
    typealias Context = SidecarRequestContext
    let secrets: SecretStore
    static let openPaths: Set<String> = ["/healthz", "/readyz", "/metrics", "/openapi.json"]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if Self.openPaths.contains(request.uri.path) { return try await next(request, context) }
        // The console: a browser signs in once and carries a session cookie (see ConsoleAPI); without it a page
        // sends the browser to the sign-in form rather than answering a problem.
        if request.uri.path.hasPrefix("/console") {
            if request.uri.path == "/console/login" || ConsoleAPI.hasSession(request, tokens: secrets.apiTokens) {
                return try await next(request, context)
            }
            if request.method == .get { return ConsoleAPI.redirect("/console/login") }
            throw Problem.unauthorized("sign in to the console first (/console/login)")
        }
        guard let header = request.headers[.authorization] else {
            throw Problem.unauthorized("send Authorization: Bearer <PAYSIDECAR_API_TOKEN>")
        }
        let prefix = "Bearer "
        // The current token, or the previous one during a rotation's grace period.
        let given = Array(header.dropFirst(prefix.count).utf8)
        guard header.count > prefix.count, header.prefix(prefix.count).lowercased() == prefix.lowercased(),
            secrets.apiTokens.contains(where: { constantTimeEquals(given, Array($0.reveal().utf8)) })
        else {
            throw Problem.unauthorized("the bearer token is not valid")
        }
        return try await next(request, context)
    }
}

extension HTTPField.Name {
    static let requestID = HTTPField.Name("X-Request-Id")!
    /// Set on an answer replayed from the journal for a retried create.
    static let idempotentReplayed = HTTPField.Name("Idempotent-Replayed")!
}
