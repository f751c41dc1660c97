import ConfigurationValues
import Crypto
import GatewayProtocol
import HTTPTypes
import Hummingbird
import Ledger
import NIOCore
import Orders

/// The internal API (contract section 3): unsigned JSON in, signed gateway calls out.
struct InternalAPI: Sendable {
    let configuration: SidecarConfiguration
    let secrets: SecretStore
    let gateway: GatewayClient
    let ledger: any Ledger
    let desk: OrderDesk
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
        try requireSignedWebhooks(input.notifyUrl)
        let deposit = DepositRequest(
            amount: input.amount, appKey: configuration.appKey, callbackUrl: configuration.depositCallbackURL,
            channelId: input.channelId, mrn: input.mrn, returnUrl: input.returnUrl, payer: input.payer
        )
        let create = CreateRequest(kind: .deposit, mrn: input.mrn, amount: input.amount.text, channelId: input.channelId, notifyUrl: input.notifyUrl,
                                   request: input.normalized.jsonText, fingerprint: Self.fingerprint(input.normalized.jsonText),
                                   traceParent: TraceParent.forCreate(request))
        return try await idempotentCreate(create) { () async -> SentCreate in
            switch input.mode {
            case .page:
                let form = PageForm.answer(deposit, action: configuration.gatewayURL + "/api/Pay", secret: secrets.merchantSigning)
                return SentCreate(report: .formIssued) { _ in (.created, form) }
            case .api:
                let call = await gateway.createDeposit(deposit)
                context.trace.gatewayLatency = call.latency
                switch call.result {
                case .success(let answer) where answer.success && answer.payUrl != nil:
                    let payUrl = DepositCreateAnswer.absolutePayURL(answer.payUrl ?? "", gatewayBaseURL: configuration.gatewayURL)
                    return SentCreate(report: .accepted) { _ in
                        (.created, .object(["mrn": .string(input.mrn), "status": .string("pending"), "payUrl": .string(payUrl)]))
                    }
                case .success(let answer):
                    let code = Self.depositRefusalCode(answer.errorMsg)
                    return SentCreate(report: .refused(code: code)) { verdict in Self.refusal(code: code, message: answer.errorMsg, verdict: verdict) }
                case .failure(let failure):
                    return SentCreate(failure)
                }
            }
        }
    }

    /// The deposit API documents only `success` and `errorMsg`: the code is the word its message starts with
    /// (`mrn_duplication: ...`, as the payout codes are written), or `gateway_rejected` when it starts with none.
    static func depositRefusalCode(_ message: String?) -> String {
        let text = (message ?? "").trimmingSpaces()
        let word = text.prefix { ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || $0 == "_" || ($0 >= "0" && $0 <= "9") }
        let rest = text.dropFirst(word.count).first
        guard word.count >= 3, word.contains("_") || GatewayResultCode(rawValue: word.lowercased()).isDocumented, rest == nil || rest == ":" || rest == " " else {
            return "gateway_rejected"
        }
        return word.lowercased()
    }

    /// The answer to a create the gateway refused: a documented code maps as the contract says; a code that
    /// leaves the order possibly existing (`mrn_duplication`, an undocumented one) says `orderStatus: unknown`.
    static func refusal(code: String, message: String?, verdict: CreateVerdict) -> (HTTPResponse.Status, JSONValue) {
        var problem: Problem
        if code == "gateway_rejected" {
            problem = Problem(.badGateway, code: code, title: "Gateway refused the deposit",
                              detail: (message ?? "").isEmpty ? "the gateway answered success: false without a message" : "the gateway refused the deposit: \(message ?? "")")
        } else {
            problem = Problem.gatewayRefused(GatewayResultCode(rawValue: code), message: message)
        }
        if verdict == .unknown {
            problem.extensions.append(.init("orderStatus", .string("unknown")))
            problem.detail += code == GatewayResultCode.mrnDuplication.rawValue
                ? "; the mrn was new to this sidecar, so an earlier send may have landed: the order may exist and is being queried; do not pay again"
                : "; the gateway's answer is not one it documents, so the order may exist: it is being queried; do not pay again"
        }
        return (problem.status, problem.json)
    }

    // MARK: Payouts

    func createPayout(_ request: Request, _ context: SidecarRequestContext) async throws -> Response {
        let input = try PayoutInput.validate(try await readObject(request)).get()
        context.trace.mrn = input.mrn
        try requireSignedWebhooks(input.notifyUrl)
        let payout = PayoutRequest(
            accountName: input.accountName, accountNumber: input.accountNumber, amount: input.amount, appKey: configuration.appKey,
            bankName: input.bankName, callbackUrl: configuration.payoutCallbackURL, mrn: input.mrn
        )
        let create = CreateRequest(kind: .payout, mrn: input.mrn, amount: input.amount.text, channelId: nil, notifyUrl: input.notifyUrl,
                                   request: input.normalized.jsonText, fingerprint: Self.fingerprint(input.normalized.jsonText),
                                   traceParent: TraceParent.forCreate(request))
        return try await idempotentCreate(create) { () async -> SentCreate in
            let call = await gateway.createPayout(payout)
            context.trace.gatewayLatency = call.latency
            switch call.result {
            case .success(let answer) where answer.error.isSuccess:
                return SentCreate(report: .accepted) { _ in (.accepted, .object(["mrn": .string(input.mrn), "status": .string("pending")])) }
            case .success(let answer):
                return SentCreate(report: .refused(code: answer.error.rawValue)) { verdict in
                    Self.refusal(code: answer.error.rawValue, message: answer.errorMessage, verdict: verdict)
                }
            case .failure(let failure):
                return SentCreate(failure)
            }
        }
    }

    /// Webhooks are never sent unsigned: an order naming its own target needs the webhook secret.
    func requireSignedWebhooks(_ notifyUrl: String?) throws {
        guard notifyUrl != nil, configuration.webhookSecret == nil else { return }
        throw Problem.invalid([FieldProblem(field: "notifyUrl", message: "needs PAYSIDECAR_WEBHOOK_SECRET to be set: webhooks are never sent unsigned")])
    }

    // MARK: Journal

    /// What sending a create came to, and how to word the answer once the order rules have given their verdict.
    struct SentCreate {
        var report: CreateReport
        var render: (CreateVerdict) -> (HTTPResponse.Status, JSONValue)

        init(report: CreateReport, render: @escaping (CreateVerdict) -> (HTTPResponse.Status, JSONValue)) {
            self.report = report
            self.render = render
        }

        /// A call with no readable answer: the contract's 502/504, with `orderStatus: unknown` when it may have arrived.
        init(_ failure: GatewayCallFailure) {
            let problem = Problem.gateway(failure, isCreate: true)
            self.init(report: .failed(requestSent: failure.requestSent, code: problem.code)) { _ in (problem.status, problem.json) }
        }
    }

    /// Journals a create before anything is sent, or answers a retry of one (Stripe's idempotency, keyed by
    /// mrn), as the order rules decide; sends it; records the outcome and the answer given, which identical
    /// retries get again.
    func idempotentCreate(_ create: CreateRequest, send: () async -> SentCreate) async throws -> Response {
        let begun = try await storage { try await desk.decide(create.kind, create.mrn, known: .nothing) { $0.create(create, at: nowMillis()) } }
        switch begun.decision.action {
        case .send:
            break
        case .replay(let answer):
            var response = Self.response(status: answer.status, body: answer.body)
            response.headers[.idempotentReplayed] = "true"
            return response
        case .report(let state):
            return json(["mrn": .string(create.mrn), "status": .string(Self.status(state))], status: create.kind == .payout ? .accepted : .ok)
        case .conflict(let detail):
            throw Problem(.conflict, code: "mrn_conflict", title: "mrn already used for another order", detail: detail)
        case .inProgress:
            throw Problem(.conflict, code: "request_in_progress", title: "Request in progress",
                          detail: "a request for mrn \(create.mrn) is still being sent; retry in a moment")
        default:
            var problem = Problem(.badGateway, code: "gateway_unavailable", title: "Outcome unknown",
                                  detail: "the sidecar stopped while sending this request; the order may or may not exist and is being queried")
            problem.extensions.append(.init("orderStatus", .string("unknown")))
            throw problem
        }
        let sent = await send()
        let (status, body) = sent.render(OrderStateMachine.verdict(for: sent.report))
        let answer = RecordedAnswer(status: Int(status.code), body: body.jsonText)
        do {
            _ = try await desk.decide(create.kind, create.mrn, known: begun.journaled) { $0.createSent(sent.report, answer: answer, at: nowMillis()) }
        } catch {
            throw Problem(.serviceUnavailable, code: "storage_unavailable", title: "Storage unavailable",
                          detail: "the outcome could not be journaled (the answer was HTTP \(answer.status)); query the order before retrying")
        }
        return Self.response(status: answer.status, body: answer.body)
    }

    static func fingerprint(_ text: String) -> String {
        SHA256.hash(data: Array(text.utf8)).map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
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
        var journaled = try await storage { try await ledger.journaled(kind, mrn) }
        let call = await gateway.query(OrderQuery(kind: kind, appKey: configuration.appKey, mrn: mrn, callback: callback))
        context.trace.gatewayLatency = call.latency
        // What the gateway says goes through the order rules like the reconciler's queries (an outcome is
        // settled, a contradiction flagged); a caller's query never moves the reconciler's schedule.
        if case .order = journaled {
            let known = journaled
            journaled = try await storage {
                try await desk.decide(kind, mrn, known: known) { $0.query(QueryReport(call.result), origin: .caller, at: nowMillis()) }.journaled
            }
        }
        var order: Order?
        var tombstone: Tombstone?
        switch journaled {
        case .order(let o): order = o
        case .tombstone(let t): tombstone = t
        case .nothing: break
        }
        // With a journal entry the answer stands even when the gateway cannot be asked right now.
        let answer: QueryAnswer?
        switch call.result {
        case .success(let a): answer = a
        case .failure(let failure):
            guard order != nil || tombstone != nil else { throw Problem.gateway(failure, isCreate: false) }
            answer = nil
        }
        if let answer, !answer.error.isSuccess, answer.error != .objectNotFound, order == nil, tombstone == nil {
            throw Problem.gatewayRefused(answer.error, message: nil)
        }
        let gatewayStatus = answer.flatMap { $0.error.isSuccess ? $0.status : nil }
        if gatewayStatus == nil, order == nil, tombstone == nil {
            throw Problem(.notFound, code: "order_not_found", title: "Order not found", detail: "neither the journal nor the gateway knows a \(kind.rawValue) with mrn \(mrn)")
        }
        var members: [JSONValue.JSONMember] = [.init("mrn", .string(mrn))]
        let status: String
        if let order, order.state.isSettled || order.state == .unknown || order.state == .rejected {
            status = Self.status(order.state)
        } else if let tombstone {
            status = tombstone.outcome.rawValue
        } else if let gatewayStatus {
            status = Self.statusText(gatewayStatus)
        } else {
            status = order.map { Self.status($0.state) } ?? "unknown"
        }
        members.append(.init("status", .string(status)))
        members.append(.init("gatewayStatus", gatewayStatus.map { .number(String($0.code)) } ?? .null))
        if let answer, !answer.error.isSuccess { members.append(.init("gatewayCode", .string(answer.error.rawValue))) }
        if case .failure(let failure) = call.result { members.append(.init("gatewayError", .string(failure.description))) }
        members.append(.init("callbackRequested", .bool(callback)))
        members.append(.init("journal", order.map(Self.journalJSON) ?? tombstone.map(Self.tombstoneJSON) ?? .null))
        return json(.object(members))
    }

    /// The status word callers see: `sending` reads as `pending`.
    static func status(_ state: OrderState) -> String {
        state == .sending ? "pending" : state.rawValue
    }

    static func journalJSON(_ order: Order) -> JSONValue {
        func time(_ millis: Millis?) -> JSONValue { millis.map { .string(rfc3339($0)) } ?? .null }
        func text(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
        let flags: [JSONValue] = order.flags.map { flag in
            .object(["code": .string(flag.code.rawValue), "detail": .string(flag.detail), "at": .string(rfc3339(flag.at))])
        }
        var members: [JSONValue.JSONMember] = []
        members.append(.init("state", .string(order.state.rawValue)))
        members.append(.init("createdAt", time(order.createdAt)))
        members.append(.init("updatedAt", time(order.updatedAt)))
        members.append(.init("amount", .string(order.amount)))
        members.append(.init("paidAmount", text(order.paidAmount)))
        members.append(.init("amountConfirmed", .bool(order.amountConfirmed)))
        members.append(.init("settlementSource", text(order.settledSource?.rawValue)))
        members.append(.init("settledAt", time(order.settledAt)))
        members.append(.init("settlementEventId", text(order.settlementEventID)))
        members.append(.init("gatewayCode", text(order.gatewayCode)))
        members.append(.init("lastGatewayStatus", order.lastGatewayStatus.map { .number(String($0)) } ?? .null))
        members.append(.init("queries", .number(String(order.queryCount))))
        members.append(.init("nextQueryAt", time(order.nextQueryAt)))
        members.append(.init("createdBySidecar", .bool(order.createdBySidecar)))
        members.append(.init("flag", text(order.flag?.code.rawValue)))
        members.append(.init("flags", .array(flags)))
        return .object(members)
    }

    static func tombstoneJSON(_ tombstone: Tombstone) -> JSONValue {
        .object([
            "state": .string(tombstone.outcome.rawValue),
            "pruned": .bool(true),
            "prunedAt": .string(rfc3339(tombstone.prunedAt)),
            "settlementEventId": tombstone.settlementEventID.map(JSONValue.string) ?? .null,
            "flag": tombstone.flag.map { .string($0.rawValue) } ?? .null,
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
