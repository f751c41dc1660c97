import GatewayProtocol
import HTTPTypes
import Hummingbird
import Ledger
import NIOCore

/// The internal API (contract section 3): unsigned JSON in, signed gateway calls out.
struct InternalAPI: Sendable {
    let configuration: SidecarConfiguration
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
        let journaled = try await journal(.deposit, input.mrn, input.amount.text, channelId: input.channelId, notifyUrl: input.notifyUrl,
                                          state: input.mode == .page ? .pending : .sending)
        switch input.mode {
        case .page:
            return json(PageForm.answer(deposit, action: configuration.gatewayURL + "/api/Pay", secret: configuration.secretKey), status: .created)
        case .api:
            let call = await gateway.createDeposit(deposit)
            context.trace.gatewayLatency = call.latency
            let answer = try await outcome(call.result, kind: .deposit, mrn: input.mrn, journaled: journaled) { answer in
                answer.success ? nil : Self.depositRefusal(answer.errorMsg)
            }
            guard let payUrl = answer.payUrl else { throw Self.depositRefusal(answer.errorMsg) }
            return json([
                "mrn": .string(input.mrn), "status": .string("pending"),
                "payUrl": .string(DepositCreateAnswer.absolutePayURL(payUrl, gatewayBaseURL: configuration.gatewayURL)),
            ], status: .created)
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
        let journaled = try await journal(.payout, input.mrn, input.amount.text, channelId: nil, notifyUrl: input.notifyUrl, state: .sending)
        let call = await gateway.createPayout(payout)
        context.trace.gatewayLatency = call.latency
        _ = try await outcome(call.result, kind: .payout, mrn: input.mrn, journaled: journaled) { answer in
            answer.error.isSuccess ? nil : Problem.gatewayRefused(answer.error, message: answer.errorMessage)
        }
        return json(["mrn": .string(input.mrn), "status": .string("pending")], status: .accepted)
    }

    // MARK: Journal

    /// Journals an order before anything is sent. False when the mrn is already journaled (the journal then
    /// keeps the first order's state).
    func journal(_ kind: OrderKind, _ mrn: String, _ amount: String, channelId: Int?, notifyUrl: String?, state: OrderState) async throws -> Bool {
        let now = nowMillis()
        return try await storage {
            try await ledger.insertOrder(OrderRecord(kind: kind.rawValue, mrn: mrn, amount: amount, channelId: channelId, notifyUrl: notifyUrl,
                                                     state: state, createdAt: now, updatedAt: now))
        }
    }

    /// Records what a create's gateway call came to, then returns the answer or throws the caller's problem.
    func outcome<Answer>(_ result: Result<Answer, GatewayCallFailure>, kind: OrderKind, mrn: String, journaled: Bool,
                         refusal: (Answer) -> Problem?) async throws -> Answer {
        let state: OrderState
        var code: String?
        var problem: Problem?
        var answer: Answer?
        switch result {
        case .success(let a):
            answer = a
            problem = refusal(a)
            state = problem == nil ? .pending : .rejected
            code = problem?.code
        case .failure(let failure):
            problem = Problem.gateway(failure, isCreate: true)
            state = failure.requestSent ? .unknown : .rejected
            code = failure.requestSent ? problem?.code : "not_sent"
        }
        if journaled {
            try? await ledger.updateOrder(kind: kind.rawValue, mrn: mrn, state: state, gatewayCode: code, at: nowMillis())
        }
        if let problem { throw problem }
        return answer!
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
        let call = await gateway.query(OrderQuery(kind: kind, appKey: configuration.appKey, mrn: mrn, callback: callback))
        context.trace.gatewayLatency = call.latency
        let answer = try call.result.mapError { Problem.gateway($0, isCreate: false) }.get()
        guard answer.error.isSuccess else {
            if answer.error == .objectNotFound {
                throw Problem(.notFound, code: "order_not_found", title: "Order not found", detail: "the gateway knows no \(kind.rawValue) with mrn \(mrn)")
            }
            throw Problem.gatewayRefused(answer.error, message: nil)
        }
        let status = answer.status ?? .other(-1)
        return json([
            "mrn": .string(mrn),
            "status": .string(Self.statusText(status)),
            "gatewayStatus": .number(String(status.code)),
            "callbackRequested": .bool(callback),
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
            let media = type.split(separator: ";").first.map { $0.trimmingCharacters(" ").lowercased() } ?? ""
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

extension Substring {
    func trimmingCharacters(_ c: Character) -> String { String(self).trimmingCharacters(c) }
}
