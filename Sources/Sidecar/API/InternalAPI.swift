import ConfigurationValues
import Crypto
import GatewayProtocol
import HTTPTypes
import Hummingbird
import Ledger
import NIOCore

/// The internal API (contract section 3): unsigned JSON in, signed gateway calls out.
struct InternalAPI: Sendable {
    let configuration: SidecarConfiguration
    let secrets: SecretStore
    let gateway: GatewayClient
    let ledger: any Ledger
    let readiness: @Sendable () async -> Bool

    static let maxBodySize = 64 * 1024

    func register(on router: Router<SidecarRequestContext>) {
        router.get("/healthz") { _, _ in json(["status": .string("ok")]) }
        router.get("/readyz") { request, context in
            guard await readiness() else {
                throw Problem(.serviceUnavailable, code: "not_ready", title: "Not ready", detail: "the sidecar is not ready")
            }
            return json(["status": .string("ready")])
        }
        router.get("/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: OpenAPIDocument.bytes)))
        }
        router.get("/v1/channels") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: Self.channelsJSON)))
        }
        router.post("/v1/deposits") { request, context in try await createDeposit(request, context) }
        router.get("/v1/deposits/:mrn") { request, context in try await query(.deposit, request, context) }
        router.post("/v1/payouts") { request, context in try await createPayout(request, context) }
        router.get("/v1/payouts/:mrn") { request, context in try await query(.payout, request, context) }
    }

    static let channelsJSON: [UInt8] = JSONValue.array(Channel.all.map {
        .object(["id": .number(String($0.id)), "name": .string($0.name), "label": .string($0.label)])
    }).encoded()

    // MARK: Deposits

    func createDeposit(_ request: Request, _ context: SidecarRequestContext) async throws -> Response {
        let input = try DepositInput.validate(try await readObject(request)).get()
        context.trace.mrn = input.mrn
        let deposit = DepositRequest(
            amount: input.amount, appKey: configuration.appKey, callbackUrl: configuration.depositCallbackURL,
            channelId: input.channelId, mrn: input.mrn, returnUrl: input.returnUrl, payer: input.payer
        )
        return try await idempotentCreate(.deposit, mrn: input.mrn, amount: input.amount.text, channelId: input.channelId,
                                          notifyUrl: input.notifyUrl, normalized: input.normalized) {
            switch input.mode {
            case .page:
                let form = PageForm.answer(deposit, action: configuration.gatewayURL + "/api/Pay", secret: secrets.merchantSigning)
                return CreateOutcome(state: .pending, code: nil, status: .created, body: form)
            case .api:
                let call = await gateway.createDeposit(deposit)
                context.trace.gatewayLatency = call.latency
                return CreateOutcome(call.result) { answer in
                    guard answer.success, let payUrl = answer.payUrl else { return .failure(Self.depositRefusal(answer.errorMsg)) }
                    return .success((.created, .object([
                        "mrn": .string(input.mrn), "status": .string("pending"),
                        "payUrl": .string(DepositCreateAnswer.absolutePayURL(payUrl, gatewayBaseURL: configuration.gatewayURL)),
                    ])))
                }
            }
        }
    }

    /// The deposit API documents only `success` and `errorMsg`; when the message starts with one of the
    /// payout codes, it maps the same way, else it is a refusal the caller may be able to fix.
    static func depositRefusal(_ message: String?) -> Problem {
        let text = message ?? ""
        for code in GatewayResultCode.documentedErrors where text.lowercased().hasPrefix(code.rawValue) {
            return Problem.gatewayRefused(code, message: text)
        }
        return Problem(.unprocessableContent, code: "gateway_rejected", title: "Gateway refused the deposit",
                       detail: text.isEmpty ? "the gateway answered success: false without a message" : "the gateway refused the deposit: \(text)")
    }

    // MARK: Payouts

    func createPayout(_ request: Request, _ context: SidecarRequestContext) async throws -> Response {
        let input = try PayoutInput.validate(try await readObject(request)).get()
        context.trace.mrn = input.mrn
        let payout = PayoutRequest(
            accountName: input.accountName, accountNumber: input.accountNumber, amount: input.amount, appKey: configuration.appKey,
            bankName: input.bankName, callbackUrl: configuration.payoutCallbackURL, mrn: input.mrn
        )
        return try await idempotentCreate(.payout, mrn: input.mrn, amount: input.amount.text, channelId: nil,
                                          notifyUrl: input.notifyUrl, normalized: input.normalized) {
            let call = await gateway.createPayout(payout)
            context.trace.gatewayLatency = call.latency
            return CreateOutcome(call.result) { answer in
                guard answer.error.isSuccess else { return .failure(Problem.gatewayRefused(answer.error, message: answer.errorMessage)) }
                return .success((.accepted, .object(["mrn": .string(input.mrn), "status": .string("pending")])))
            }
        }
    }

    // MARK: Journal

    /// Journals a create before anything is sent, or answers a retry of one (Stripe's idempotency, keyed by
    /// mrn): the same body gets the recorded answer again without a second gateway call; a different body is
    /// 409 `mrn_conflict`; a retry while the first is in flight is 409 `request_in_progress`. A create that
    /// never reached the gateway may be sent again.
    func idempotentCreate(_ kind: OrderKind, mrn: String, amount: String, channelId: Int?, notifyUrl: String?, normalized: JSONValue,
                          send: () async -> CreateOutcome) async throws -> Response {
        let request = normalized.jsonText
        let fingerprint = Self.fingerprint(request)
        let now = nowMillis()
        let begin = try await storage {
            try await ledger.beginOrder(OrderRecord(kind: kind.rawValue, mrn: mrn, amount: amount, channelId: channelId, notifyUrl: notifyUrl,
                                                    state: .sending, createdAt: now, updatedAt: now, request: request, fingerprint: fingerprint))
        }
        if case .existing(let order) = begin {
            guard order.fingerprint == fingerprint else {
                throw Problem(.conflict, code: "mrn_conflict", title: "mrn already used for another order",
                              detail: "mrn \(mrn) was used with a different request; nothing was sent")
            }
            let restarted = try await storage { try await ledger.restartOrder(kind: kind.rawValue, mrn: mrn, at: now) }
            if !restarted {
                if order.state == .unknown, order.responseBody == nil {
                    var problem = Problem(.badGateway, code: "gateway_unavailable", title: "Outcome unknown",
                                          detail: "the sidecar stopped while sending this request; the order may or may not exist and is being queried")
                    problem.extensions.append(.init("orderStatus", .string("unknown")))
                    throw problem
                }
                if order.state == .sending || order.responseBody == nil {
                    throw Problem(.conflict, code: "request_in_progress", title: "Request in progress",
                                  detail: "a request for mrn \(mrn) is still being sent; retry in a moment")
                }
                // The first answer said "unknown" but the reconciler has since learned the outcome: say what is
                // known now rather than replay a stale answer.
                if order.gatewayCode != nil, order.responseStatus.map({ $0 >= 500 }) == true, order.state != .unknown, order.state != .rejected {
                    return json(["mrn": .string(mrn), "status": .string(Self.journalStatus(order.state))], status: kind == .payout ? .accepted : .ok)
                }
                return Self.replay(order)
            }
        }
        let outcome = await send()
        let body = outcome.body.jsonText
        let unsettled = outcome.state == .pending || outcome.state == .unknown
        do {
            try await ledger.finishCreate(kind: kind.rawValue, mrn: mrn, state: outcome.state, gatewayCode: outcome.code,
                                          responseStatus: Int(outcome.status.code), responseBody: body,
                                          nextQueryAt: unsettled ? nowMillis() + milliseconds(configuration.reconcileAfter) : nil, at: nowMillis())
        } catch {
            throw Problem(.serviceUnavailable, code: "storage_unavailable", title: "Storage unavailable",
                          detail: "the outcome could not be journaled (it was \(outcome.state.rawValue)); query the order before retrying")
        }
        return Self.response(status: Int(outcome.status.code), body: body)
    }

    static func fingerprint(_ text: String) -> String {
        SHA256.hash(data: Array(text.utf8)).map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    /// The recorded answer, byte for byte, marked as a replay.
    static func replay(_ order: OrderRecord) -> Response {
        var response = response(status: order.responseStatus ?? 200, body: order.responseBody ?? "{}")
        response.headers[.idempotentReplayed] = "true"
        return response
    }

    static func response(status: Int, body: String) -> Response {
        Response(status: .init(code: status), headers: [.contentType: status >= 400 ? "application/problem+json" : "application/json"],
                 body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    // MARK: Queries

    func query(_ kind: OrderKind, _ request: Request, _ context: SidecarRequestContext) async throws -> Response {
        let raw = context.parameters.get("mrn") ?? ""
        guard let mrn = FormURLEncoding.percentDecode(raw) else {
            throw Problem.invalid([FieldProblem(field: "mrn", message: "is not valid percent-encoded UTF-8")])
        }
        context.trace.mrn = mrn
        var problems: [FieldProblem] = []
        if let p = FieldRules.mrn(mrn) { problems.append(p) }
        var callback = false
        let query = (try? FormURLEncoding.decode(request.uri.query ?? "")) ?? []
        for (name, value) in query {
            switch (name, value) {
            case ("callback", "true"): callback = true
            case ("callback", "false"): callback = false
            case ("callback", _): problems.append(FieldProblem(field: "callback", message: "must be true or false"))
            default: problems.append(FieldProblem(field: name, message: "is not a known query parameter (allowed: callback)"))
            }
        }
        guard problems.isEmpty else { throw Problem.invalid(problems) }
        let journaled = try await storage { try await ledger.order(kind: kind.rawValue, mrn: mrn) }
        let call = await gateway.query(OrderQuery(kind: kind, appKey: configuration.appKey, mrn: mrn, callback: callback))
        context.trace.gatewayLatency = call.latency
        // With a journal entry the answer stands even when the gateway cannot be asked right now.
        let answer: QueryAnswer?
        switch call.result {
        case .success(let a): answer = a
        case .failure(let failure):
            guard journaled != nil else { throw Problem.gateway(failure, isCreate: false) }
            answer = nil
        }
        if let answer, !answer.error.isSuccess, answer.error != .objectNotFound, journaled == nil {
            throw Problem.gatewayRefused(answer.error, message: nil)
        }
        let gatewayStatus = answer.flatMap { $0.error.isSuccess ? $0.status : nil }
        if gatewayStatus == nil, journaled == nil {
            throw Problem(.notFound, code: "order_not_found", title: "Order not found", detail: "neither the journal nor the gateway knows a \(kind.rawValue) with mrn \(mrn)")
        }
        var members: [JSONValue.JSONMember] = [.init("mrn", .string(mrn))]
        let status: String
        if let order = journaled, order.state.isSettled {
            status = order.state.rawValue
        } else if let gatewayStatus {
            status = Self.statusText(gatewayStatus)
        } else {
            status = journaled.map { Self.journalStatus($0.state) } ?? "unknown"
        }
        members.append(.init("status", .string(status)))
        members.append(.init("gatewayStatus", gatewayStatus.map { .number(String($0.code)) } ?? .null))
        if let answer, !answer.error.isSuccess { members.append(.init("gatewayCode", .string(answer.error.rawValue))) }
        if case .failure(let failure) = call.result { members.append(.init("gatewayError", .string(failure.description))) }
        members.append(.init("callbackRequested", .bool(callback)))
        members.append(.init("journal", journaled.map(Self.journalJSON) ?? .null))
        return json(.object(members))
    }

    static func journalStatus(_ state: OrderState) -> String {
        switch state {
        case .sending, .pending: return "pending"
        case .rejected: return "rejected"
        case .unknown: return "unknown"
        case .succeeded: return "succeeded"
        case .failed: return "failed"
        }
    }

    static func journalJSON(_ order: OrderRecord) -> JSONValue {
        .object([
            "state": .string(order.state.rawValue),
            "createdAt": .string(rfc3339(order.createdAt)),
            "updatedAt": .string(rfc3339(order.updatedAt)),
            "amount": .string(order.amount),
            "paidAmount": order.paidAmount.map(JSONValue.string) ?? .null,
            "settlementSource": order.settledSource.map(JSONValue.string) ?? .null,
            "settledAt": order.settledAt.map { .string(rfc3339($0)) } ?? .null,
            "gatewayCode": order.gatewayCode.map(JSONValue.string) ?? .null,
            "lastGatewayStatus": order.lastGatewayStatus.map { .number(String($0)) } ?? .null,
            "createdBySidecar": .bool(order.known),
            "flag": order.flag.map(JSONValue.string) ?? .null,
        ])
    }

    static func statusText(_ status: GatewayOrderStatus) -> String {
        switch status {
        case .waiting: return "pending"
        case .paid: return "succeeded"
        case .failed: return "failed"
        case .other: return "unknown"
        }
    }

    // MARK: Body

    /// Reads a JSON object body of at most 64 KiB.
    func readObject(_ request: Request) async throws -> [JSONValue.JSONMember] {
        if let type = request.headers[.contentType] {
            let media = type.split(separator: ";").first.map { String($0).trimmingSpaces().lowercased() } ?? ""
            guard media == "application/json" || media.hasSuffix("+json") else { throw Problem.unsupportedMediaType(media) }
        }
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > Self.maxBodySize { throw Problem.tooLarge }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: Self.maxBodySize)
        } catch is NIOTooManyBytesError {
            throw Problem.tooLarge
        }
        let value: JSONValue
        do {
            value = try JSONValue.parse(buffer.readableBytesView)
        } catch {
            throw Problem.invalidJSON(error.description)
        }
        guard let members = value.members else { throw Problem.invalidJSON("the body must be a JSON object") }
        return members
    }
}

func json(_ members: KeyValuePairs<String, JSONValue>, status: HTTPResponse.Status = .ok) -> Response {
    json(JSONValue.object(members), status: status)
}

func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
    Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: value.encoded())))
}
