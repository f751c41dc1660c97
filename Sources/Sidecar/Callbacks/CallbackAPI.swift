import ConfigurationValues
import Foundation
import GatewayProtocol
import HTTPTypes
import Hummingbird
import Ledger
import Logging
import NIOCore

/// The callback listener's routes (contract section 4): verify, store in one transaction, answer `success`.
struct CallbackAPI: Sendable {
    let configuration: SidecarConfiguration
    let secrets: SecretStore
    let ledger: any Ledger
    let onEmitted: @Sendable () -> Void
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
        let source = ClientAddress.resolve(peer: context.remoteAddress?.ipAddress, forwardedFor: request.headers[values: .xForwardedFor],
                                           trustedProxies: configuration.trustedProxies)
        func reject(_ status: HTTPResponse.Status, _ reason: String, _ detail: String, mrn: String? = nil, body: [UInt8] = []) async -> Response {
            let rejection = RejectedCallback(kind: kind.rawValue, mrn: mrn, reason: reason, detail: detail, sourceAddress: source ?? "unknown",
                                             body: String(decoding: body, as: UTF8.self), at: nowMillis())
            do { try await ledger.recordRejection(rejection) } catch { logger.error("could not record a refused callback", metadata: ["error": "\(error)"]) }
            logger.warning("callback refused", metadata: ["kind": "\(kind.rawValue)", "reason": "\(reason)", "source": "\(source ?? "unknown")", "mrn": "\(mrn ?? "-")"])
            if let mrn { context.trace.mrn = mrn }
            metrics?.callback(kind: kind.rawValue, result: "rejected", reason: reason)
            return plain(status, detail)
        }

        if let allowed = configuration.callbackAllowedIPs {
            guard let source, allowed.contains(where: { $0.contains(source) }) else {
                return await reject(.forbidden, "address_not_allowed", "source address not allowed")
            }
        }
        let media = request.headers[.contentType]?.split(separator: ";").first.map { String($0).trimmingSpaces().lowercased() }
        guard media == "application/x-www-form-urlencoded" else {
            return await reject(.unsupportedMediaType, "not_a_form", "expected application/x-www-form-urlencoded")
        }
        let body: [UInt8]
        do {
            body = Array(try await request.body.collect(upTo: Self.maxBodySize).readableBytesView)
        } catch {
            return await reject(.contentTooLarge, "too_large", "body larger than 16 KiB")
        }
        let settlement: Settlement
        do {
            settlement = try verifiedSettlement(kind, body: body, source: source)
        } catch let rejection {
            let mrn = (try? FormURLEncoding.decode(body))?.first { $0.name == "mrn" }?.value
            let status: HTTPResponse.Status = (rejection == .badSignature || rejection == .wrongAppKey) ? .unauthorized : .badRequest
            return await reject(status, rejection.code, rejection.description, mrn: mrn, body: body)
        }
        context.trace.mrn = settlement.mrn
        do {
            let outcome = try await ledger.apply(settlement, eventID: EventID.make())
            switch outcome {
            case .emitted(let id):
                logger.info("callback accepted", metadata: ["kind": "\(kind.rawValue)", "mrn": "\(settlement.mrn)", "event_id": "\(id)"])
                metrics?.callback(kind: kind.rawValue, result: "accepted")
                onEmitted()
            case .duplicate:
                logger.info("callback duplicate", metadata: ["kind": "\(kind.rawValue)", "mrn": "\(settlement.mrn)"])
                metrics?.callback(kind: kind.rawValue, result: "duplicate")
            case .refused(let reason, let detail):
                return await reject(.badRequest, reason, detail, mrn: settlement.mrn, body: body)
            case .contradiction(let existing):
                logger.error("callback contradicts a settled order; recorded and flagged, nothing emitted",
                             metadata: ["kind": "\(kind.rawValue)", "mrn": "\(settlement.mrn)", "existing": "\(existing.rawValue)"])
                metrics?.callback(kind: kind.rawValue, result: "contradiction")
            }
        } catch {
            metrics?.callback(kind: kind.rawValue, result: "error", reason: "storage_unavailable")
            logger.error("could not store a callback; the gateway will retry", metadata: ["mrn": "\(settlement.mrn)", "error": "\(error)"])
            return plain(.serviceUnavailable, "storage unavailable, retry later")
        }
        return plain(.ok, "success")
    }

    /// Checks a verified callback against the journal: the amount ordered must match (a deposit's
    /// `originAmount`, a payout's `amount`; what a customer actually paid may differ and is reported), and an
    /// mrn this sidecar never created is refused when PAYSIDECAR_UNKNOWN_ORDER_CALLBACKS=reject.
    static func integrityProblem(_ kind: OrderKind, orderAmount: String, order: OrderRecord?, acceptUnknown: Bool) -> (reason: String, detail: String)? {
        guard let order, order.known else {
            return acceptUnknown ? nil : ("unknown_order", "no order with this mrn was created by this sidecar")
        }
        let ordered = AmountText.parse(order.amount, maxDecimals: 2, strict: false)
        let reported = AmountText.parse(orderAmount, maxDecimals: 2, strict: false)
        guard let ordered, let reported, ordered == reported else {
            let field = kind == .deposit ? "originAmount" : "amount"
            return ("amount_mismatch", "\(field) \(orderAmount) does not match the order's amount \(order.amount)")
        }
        return nil
    }

    /// Parses and verifies a callback, and turns it into the settlement it reports.
    func verifiedSettlement(_ kind: OrderKind, body: [UInt8], source: String?) throws(CallbackRejection) -> Settlement {
        let raw = String(decoding: body, as: UTF8.self)
        let at = nowMillis()
        let acceptUnknown = configuration.acceptUnknownOrderCallbacks
        switch kind {
        case .deposit:
            let callback = try DepositCallback(formBody: body)
            try callback.verify(appKey: configuration.appKey, secrets: secrets.merchantVerifying)
            if let problem = FieldRules.mrn(callback.mrn) { throw .invalidField("mrn", problem.message) }
            return Settlement(
                kind: kind.rawValue, mrn: callback.mrn, succeeded: true, source: "callback", eventType: "deposit.succeeded",
                paidAmount: callback.amount, orderAmount: callback.originAmount, rawBody: raw, sourceAddress: source, at: at,
                check: { Self.integrityProblem(kind, orderAmount: callback.originAmount, order: $0, acceptUnknown: acceptUnknown) }
            ) { order in
                EventBody.deposit(succeeded: true, mrn: callback.mrn, paid: callback.amount, origin: callback.originAmount,
                                  channelId: callback.channelId, source: "callback", order: order, at: at)
            }
        case .payout:
            let callback = try PayoutCallback(formBody: body)
            try callback.verify(appKey: configuration.appKey, secrets: secrets.merchantVerifying)
            if let problem = FieldRules.mrn(callback.mrn) { throw .invalidField("mrn", problem.message) }
            return Settlement(
                kind: kind.rawValue, mrn: callback.mrn, succeeded: true, source: "callback", eventType: "payout.succeeded",
                paidAmount: callback.amount, orderAmount: callback.amount, rawBody: raw, sourceAddress: source, at: at,
                check: { Self.integrityProblem(kind, orderAmount: callback.amount, order: $0, acceptUnknown: acceptUnknown) }
            ) { order in
                EventBody.payout(succeeded: true, mrn: callback.mrn, amount: callback.amount, source: "callback", order: order, at: at)
            }
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
/// trusted proxy. Otherwise the header is ignored and the peer address counts.
enum ClientAddress {
    static func resolve(peer: String?, forwardedFor: [String], trustedProxies: [IPRange]?) -> String? {
        guard let peer else { return nil }
        guard let trusted = trustedProxies, trusted.contains(where: { $0.contains(peer) }), !forwardedFor.isEmpty else { return peer }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { String($0).trimmingSpaces() }.filter { !$0.isEmpty }
        for hop in hops.reversed() where !trusted.contains(where: { $0.contains(hop) }) {
            return IPRange.parseAddress(hop) == nil ? peer : hop
        }
        return hops.first ?? peer
    }
}

/// Event ids: `evt_` + 12 hex digits of milliseconds + 16 random hex digits, so they sort by creation.
enum EventID {
    static func make() -> String {
        var rng = SystemRandomNumberGenerator()
        let time = String(UInt64(nowMillis()), radix: 16)
        let random = String(rng.next() as UInt64, radix: 16)
        return "evt_" + String(repeating: "0", count: max(0, 12 - time.count)) + time + String(repeating: "0", count: 16 - random.count) + random
    }
}

/// The webhook body of contract section 5: `{"type","timestamp","data"}`.
enum EventBody {
    static func deposit(succeeded: Bool, mrn: String, paid: String?, origin: String?, channelId: Int?, source: String, order: OrderRecord?, at: Millis) -> String {
        var data: [JSONValue.JSONMember] = [.init("mrn", .string(mrn))]
        let amount = paid ?? order?.amount
        data.append(.init("amount", amount.map(JSONValue.string) ?? .null))
        data.append(.init("originAmount", (origin ?? order?.amount).map(JSONValue.string) ?? .null))
        data.append(.init("channelId", (channelId ?? order?.channelId).map { .number(String($0)) } ?? .null))
        data.append(.init("source", .string(source)))
        data.append(.init("knownOrder", .bool(order != nil)))
        if let paid, let journaled = order?.amount ?? origin,
           let paidFen = AmountText.parse(paid, maxDecimals: 2, strict: false),
           let expectedFen = AmountText.parse(journaled, maxDecimals: 2, strict: false) {
            data.append(.init("amountMismatch", .bool(paidFen != expectedFen)))
        }
        return wrap(type: "deposit.\(succeeded ? "succeeded" : "failed")", data: data, at: at)
    }

    static func payout(succeeded: Bool, mrn: String, amount: String?, source: String, order: OrderRecord?, at: Millis) -> String {
        let data: [JSONValue.JSONMember] = [
            .init("mrn", .string(mrn)),
            .init("amount", (amount ?? order?.amount).map(JSONValue.string) ?? .null),
            .init("source", .string(source)),
            .init("knownOrder", .bool(order != nil)),
        ]
        return wrap(type: "payout.\(succeeded ? "succeeded" : "failed")", data: data, at: at)
    }

    static func wrap(type: String, data: [JSONValue.JSONMember], at: Millis) -> String {
        JSONValue.object(["type": .string(type), "timestamp": .string(rfc3339(at)), "data": .object(data)]).jsonText
    }
}
