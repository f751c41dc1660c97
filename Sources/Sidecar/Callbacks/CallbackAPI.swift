import ConfigurationValues
import Foundation
import GatewayProtocol
import HTTPTypes
import Hummingbird
import Ledger
import Logging
import NIOCore
import Orders
import Synchronization

/// The callback listener's routes (contract section 4): verify, let the order rules decide, store the decision in
/// one transaction (durably), answer `success`.
struct CallbackAPI: Sendable {
    let configuration: SidecarConfiguration
    let secrets: SecretStore
    let ledger: any Ledger
    let desk: OrderDesk
    let rejections: RejectionSampler
    let metrics: SidecarMetrics?
    let logger: Logger

    static let maxBodySize = 16 * 1024

    func register(on router: Router<SidecarRequestContext>) {
        for kind in OrderKind.allCases {
            let path = RouterPath(stringLiteral: "/callbacks/\(kind.rawValue)")
            router.post(path) { request, context in await handle(kind, request, context) }
            for method in [HTTPRequest.Method.get, .put, .delete, .patch, .head] {
                router.on(path, method: method) { _, context in
                    var response = plain(.methodNotAllowed, "method not allowed: POST only")
                    response.headers[.allow] = "POST"
                    return response
                }
            }
        }
    }

    func handle(_ kind: OrderKind, _ request: Request, _ context: SidecarRequestContext) async -> Response {
        let peer = context.remoteAddress?.ipAddress
        let resolved = ClientAddress.resolve(peer: peer, forwardedFor: request.headers[values: .xForwardedFor], trustedProxies: configuration.trustedProxies)
        let source: String?
        switch resolved {
        case .address(let address): source = address
        case .unreadableForwardedFor(let hop):
            return await reject(kind, context, .badRequest, "bad_forwarded_for", "X-Forwarded-For from a trusted proxy ends in \(hop.prefix(64)), not an address",
                                source: peer)
        }

        if let allowed = configuration.callbackAllowedIPs {
            guard let source, allowed.contains(where: { $0.contains(source) }) else {
                return await reject(kind, context, .forbidden, "address_not_allowed", "source address not allowed", source: source)
            }
        }
        let media = request.headers[.contentType]?.split(separator: ";").first.map { String($0).trimmingSpaces().lowercased() }
        guard media == "application/x-www-form-urlencoded" else {
            return await reject(kind, context, .unsupportedMediaType, "not_a_form", "expected application/x-www-form-urlencoded", source: source)
        }
        let body: [UInt8]
        do {
            body = Array(try await request.body.collect(upTo: Self.maxBodySize).readableBytesView)
        } catch {
            return await reject(kind, context, .contentTooLarge, "too_large", "body larger than 16 KiB", source: source)
        }
        let report: CallbackReport
        do {
            report = try verifiedReport(kind, body: body, source: source)
        } catch let rejection {
            let mrn = (try? FormURLEncoding.decode(body))?.first { $0.name == "mrn" }?.value
            let status: HTTPResponse.Status = (rejection == .badSignature || rejection == .wrongAppKey) ? .unauthorized : .badRequest
            return await reject(kind, context, status, rejection.code, rejection.description, mrn: mrn, body: body, source: source)
        }
        context.trace.mrn = report.mrn
        let decision: Decision
        do {
            decision = try await desk.decide(kind, report.mrn) { $0.callback(report, at: nowMillis()) }.decision
        } catch {
            metrics?.callback(kind: kind.rawValue, result: "error", reason: "storage_unavailable")
            logger.error("could not store a callback; the gateway will retry", metadata: ["mrn": "\(report.mrn)", "error": "\(error)"])
            return plain(.serviceUnavailable, "storage unavailable, retry later")
        }
        if case .refuse(let reason, let detail) = decision.action {
            return await reject(kind, context, .badRequest, reason, detail, mrn: report.mrn, body: body, source: source)
        }
        let result = decision.outcome == .settled || decision.outcome == .confirmed ? "accepted" : decision.outcome == .flagged ? "flagged" : "duplicate"
        logger.info("callback \(result)", metadata: [
            "kind": "\(kind.rawValue)", "mrn": "\(report.mrn)", "outcome": "\(decision.outcome.rawValue)",
            "event_ids": "\(decision.events.map(\.id).joined(separator: ","))",
        ])
        metrics?.callback(kind: kind.rawValue, result: result)
        return plain(.ok, "success")
    }

    /// Answers a refused callback: 4xx with a short reason, counted and logged. The refusal is recorded in the
    /// ledger only while refusals stay under `RejectionSampler`'s rate, so a flood costs no database writes.
    func reject(_ kind: OrderKind, _ context: SidecarRequestContext, _ status: HTTPResponse.Status, _ reason: String, _ detail: String,
                mrn: String? = nil, body: [UInt8] = [], source: String?) async -> Response {
        if let mrn { context.trace.mrn = mrn }
        metrics?.callback(kind: kind.rawValue, result: "rejected", reason: reason)
        if rejections.admit(at: nowMillis()) {
            let rejection = RejectedCallback(kind: kind, mrn: mrn, reason: reason, detail: detail, sourceAddress: source ?? "unknown",
                                             body: String(decoding: body, as: UTF8.self), at: nowMillis())
            do { try await ledger.recordRejection(rejection) } catch { logger.error("could not record a refused callback", metadata: ["error": "\(error)"]) }
            logger.warning("callback refused", metadata: ["kind": "\(kind.rawValue)", "reason": "\(reason)", "source": "\(source ?? "unknown")", "mrn": "\(mrn ?? "-")"])
        }
        return plain(status, detail)
    }

    /// Parses and verifies a callback: what the gateway reports, in the order rules' terms.
    func verifiedReport(_ kind: OrderKind, body: [UInt8], source: String?) throws(CallbackRejection) -> CallbackReport {
        let raw = String(decoding: body, as: UTF8.self)
        switch kind {
        case .deposit:
            let callback = try DepositCallback(formBody: body)
            try callback.verify(appKey: configuration.appKey, secrets: secrets.merchantVerifying)
            if let problem = FieldRules.mrn(callback.mrn) { throw .invalidField("mrn", problem.message) }
            return CallbackReport(kind: .deposit, mrn: callback.mrn, amount: callback.amount, originAmount: callback.originAmount, channelId: callback.channelId,
                                  rawBody: raw, sourceAddress: source)
        case .payout:
            let callback = try PayoutCallback(formBody: body)
            try callback.verify(appKey: configuration.appKey, secrets: secrets.merchantVerifying)
            if let problem = FieldRules.mrn(callback.mrn) { throw .invalidField("mrn", problem.message) }
            return CallbackReport(kind: .payout, mrn: callback.mrn, amount: callback.amount, rawBody: raw, sourceAddress: source)
        }
    }
}

func plain(_ status: HTTPResponse.Status, _ text: String) -> Response {
    Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
}

extension HTTPField.Name {
    static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!
}

/// Which address a callback came from.
///
/// `X-Forwarded-For` is believed only when the connection comes from a configured trusted proxy
/// (PAYSIDECAR_TRUSTED_PROXIES); then the client is the right-most address in the header that is not itself a
/// trusted proxy. A hop there that is not an address is refused rather than replaced by the proxy's own
/// address (which the allowlist may well admit). Otherwise the header is ignored and the peer address counts.
enum ClientAddress: Sendable, Hashable {
    case address(String?)
    case unreadableForwardedFor(String)

    static func resolve(peer: String?, forwardedFor: [String], trustedProxies: [IPRange]?) -> ClientAddress {
        guard let peer else { return .address(nil) }
        guard let trusted = trustedProxies, trusted.contains(where: { $0.contains(peer) }), !forwardedFor.isEmpty else { return .address(peer) }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { String($0).trimmingSpaces() }.filter { !$0.isEmpty }
        for hop in hops.reversed() {
            guard IPRange.parseAddress(hop) != nil else { return .unreadableForwardedFor(hop) }
            if !trusted.contains(where: { $0.contains(hop) }) { return .address(hop) }
        }
        return .address(hops.first ?? peer)
    }
}

/// Lets refused callbacks into the ledger at most `perSecond` a second (the rest are counted and answered,
/// not stored): a flood of forged callbacks costs no database writes beyond this bounded sample.
final class RejectionSampler: Sendable {
    let perSecond: Int
    private let window = Mutex<(second: Millis, count: Int)>((0, 0))

    init(perSecond: Int = 10) {
        self.perSecond = perSecond
    }

    func admit(at now: Millis) -> Bool {
        window.withLock { window in
            let second = now / 1000
            if window.second != second { window = (second, 0) }
            window.count += 1
            return window.count <= perSecond
        }
    }
}
