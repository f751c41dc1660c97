import CurlHTTP
import GatewayProtocol
import Tracing

/// A gateway call that produced no answer the sidecar could read.
public struct GatewayCallFailure: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// Could not reach the gateway, or it answered 5xx, or the connection broke.
        case unavailable
        /// No answer within PAYSIDECAR_GATEWAY_TIMEOUT.
        case timeout
        /// An answer that is not the documented JSON.
        case badResponse
    }

    public let kind: Kind
    /// Safe to show a caller: never holds the secret or the signed request.
    public let detail: String
    /// True when the request may have reached the gateway: for a create, the outcome is unknown.
    public let requestSent: Bool

    public var description: String { "\(kind): \(detail)" }
}

/// The gateway's answer with the time the call took.
public struct GatewayCall<Answer: Sendable>: Sendable {
    public let result: Result<Answer, GatewayCallFailure>
    public let latency: Duration
}

/// Speaks the gateway's protocol over CurlHTTP: builds signed requests, sends them, reads the answers.
public struct GatewayClient: Sendable {
    let http: CurlClient
    let baseURL: String
    let secrets: SecretStore
    let timeout: Duration
    let metrics: SidecarMetrics?

    public init(http: CurlClient, baseURL: String, secrets: SecretStore, timeout: Duration, metrics: SidecarMetrics? = nil) {
        self.http = http
        self.baseURL = baseURL
        self.secrets = secrets
        self.timeout = timeout
        self.metrics = metrics
    }

    /// Signs with the merchant secret in use now (it may be rotated while the sidecar runs).
    var secret: MerchantSecret { secrets.merchantSigning }

    /// `POST /api/Pay/Create`.
    public func createDeposit(_ deposit: DepositRequest) async -> GatewayCall<DepositCreateAnswer> {
        await call("deposit_create", method: "POST", path: "/api/Pay/Create", body: deposit.jsonBody(secret: secret)) { (bytes) throws(GatewayAnswerError) in try DepositCreateAnswer(json: bytes) }
    }

    /// `POST /api/Payouts/Create`.
    public func createPayout(_ payout: PayoutRequest) async -> GatewayCall<PayoutCreateAnswer> {
        await call("payout_create", method: "POST", path: "/api/Payouts/Create", body: payout.jsonBody(secret: secret)) { (bytes) throws(GatewayAnswerError) in try PayoutCreateAnswer(json: bytes) }
    }

    /// `GET /api/Payments/Query` or `/api/Payouts/Query`.
    public func query(_ query: OrderQuery) async -> GatewayCall<QueryAnswer> {
        await call(query.kind == .deposit ? "deposit_query" : "payout_query", method: "GET", path: query.pathAndQuery(secret: secret), body: nil) { (bytes) throws(GatewayAnswerError) in try QueryAnswer(json: bytes) }
    }

    /// One gateway call as a client span, named by its route template (`POST /api/Payouts/Create`). Its attributes
    /// are the method, the template, the HTTP status and the outcome: never the query string (a query's is signed)
    /// nor the body (the appKey, the signature, a payout's account).
    func call<Answer: Sendable>(
        _ operation: String, method: String, path: String, body: [UInt8]?,
        parse: ([UInt8]) throws(GatewayAnswerError) -> Answer
    ) async -> GatewayCall<Answer> {
        let route = String(path.prefix { $0 != "?" })
        return await withSpan("\(method) \(route)", ofKind: .client) { span in
            span.attributes["http.request.method"] = method
            span.attributes["url.template"] = route
            span.attributes["paysidecar.gateway.operation"] = operation
            let (call, status) = await send(operation, method: method, path: path, body: body, parse: parse)
            if let status { span.attributes["http.response.status_code"] = status }
            let outcome: String
            switch call.result {
            case .success: outcome = "answered"
            case .failure(let failure):
                outcome = Self.spanOutcome(failure, answered: status != nil)
                span.setStatus(SpanStatus(code: .error, message: outcome))
            }
            span.attributes["paysidecar.gateway.outcome"] = outcome
            return call
        }
    }

    /// What a failed call means for the order, in the span's words: `timeout`; `bad_response` (an answer that is
    /// not the documented JSON); `unknown` (sent, then the connection was lost or the call abandoned, with no
    /// answer: the order may exist); `unavailable` (never reached the gateway, or it answered 5xx). The metrics
    /// count `unknown` as `unavailable`.
    static func spanOutcome(_ failure: GatewayCallFailure, answered: Bool) -> String {
        switch failure.kind {
        case .timeout: return "timeout"
        case .badResponse: return "bad_response"
        case .unavailable: return failure.requestSent && !answered ? "unknown" : "unavailable"
        }
    }

    /// Sends the call; returns its result and the HTTP status, when there was an answer.
    private func send<Answer: Sendable>(
        _ operation: String, method: String, path: String, body: [UInt8]?,
        parse: ([UInt8]) throws(GatewayAnswerError) -> Answer
    ) async -> (GatewayCall<Answer>, Int?) {
        let start = ContinuousClock.now
        var status: Int?
        var headers: [(name: String, value: String)] = [("Accept", "application/json")]
        if body != nil { headers.append(("Content-Type", "application/json; charset=utf-8")) }
        let request = CurlRequest(method: method, url: baseURL + path, headers: headers, body: body, timeout: timeout)
        let result: Result<Answer, GatewayCallFailure>
        do {
            let response = try await http.execute(request)
            status = response.status
            if response.status >= 500 {
                result = .failure(GatewayCallFailure(kind: .unavailable, detail: "the gateway answered HTTP \(response.status)", requestSent: true))
            } else if response.status != 200 {
                result = .failure(GatewayCallFailure(kind: .badResponse, detail: "the gateway answered HTTP \(response.status)", requestSent: true))
            } else {
                do {
                    result = .success(try parse(response.body))
                } catch {
                    result = .failure(GatewayCallFailure(kind: .badResponse, detail: "the gateway's answer could not be read: \(error.message)", requestSent: true))
                }
            }
        } catch let error as CurlError {
            result = .failure(Self.failure(for: error))
        } catch {
            result = .failure(GatewayCallFailure(kind: .unavailable, detail: "the gateway call failed", requestSent: true))
        }
        let latency = ContinuousClock.now - start
        if let metrics {
            let outcome: String
            switch result {
            case .success: outcome = "answered"
            case .failure(let failure):
                switch failure.kind {
                case .unavailable: outcome = "unavailable"
                case .timeout: outcome = "timeout"
                case .badResponse: outcome = "bad_response"
                }
            }
            metrics.gatewayCall(operation: operation, outcome: outcome, latency: latency)
        }
        return (GatewayCall(result: result, latency: latency), status)
    }

    static func failure(for error: CurlError) -> GatewayCallFailure {
        switch error.kind {
        case .timedOut:
            return GatewayCallFailure(kind: .timeout, detail: "no answer from the gateway in time", requestSent: error.requestSent)
        case .protocolError, .responseTooLarge:
            return GatewayCallFailure(kind: .badResponse, detail: "the gateway's answer broke HTTP: \(error.message)", requestSent: true)
        case .cancelled, .shutdown:
            return GatewayCallFailure(kind: .unavailable, detail: "the call was abandoned (\(error.kind))", requestSent: error.requestSent)
        default:
            // libcurl's message names host and port, never the request body.
            return GatewayCallFailure(kind: .unavailable, detail: "the gateway could not be reached: \(error.message)", requestSent: error.requestSent)
        }
    }
}
