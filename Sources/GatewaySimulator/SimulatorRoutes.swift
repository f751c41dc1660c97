import GatewayProtocol
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// A refusal in the gateway's own words: an error code and a message.
struct GatewayRefusal: Error {
    var code: GatewayResultCode
    var message: String
}

extension GatewaySimulator {
    func makeRouter() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.get("/healthz") { _, _ in Self.text("ok") }

        // The gateway's endpoints.
        router.post("/api/Pay") { request, _ in try await self.pagePay(request) }
        router.get("/api/Pay") { request, _ in self.cashierForPayURL(request) }
        router.post("/api/Pay/Create") { request, _ in try await self.createDepositAPI(request) }
        router.get("/api/Payments/Query") { request, _ in try await self.query(request, kind: .deposit) }
        router.post("/api/Payouts/Create") { request, _ in try await self.createPayout(request) }
        router.get("/api/Payouts/Query") { request, _ in try await self.query(request, kind: .payout) }

        // The cashier page's buttons.
        router.post("/_sim/cashier/:id/pay") { _, context in self.cashierButton(context, paid: true) }
        router.post("/_sim/cashier/:id/fail") { _, context in self.cashierButton(context, paid: false) }

        // The control API.
        router.post("/_sim/deposits/:mrn/pay") { request, context in try await self.controlSettle(request, context, kind: .deposit, paid: true) }
        router.post("/_sim/deposits/:mrn/fail") { request, context in try await self.controlSettle(request, context, kind: .deposit, paid: false) }
        router.post("/_sim/payouts/:mrn/complete") { request, context in try await self.controlSettle(request, context, kind: .payout, paid: true) }
        router.post("/_sim/payouts/:mrn/fail") { request, context in try await self.controlSettle(request, context, kind: .payout, paid: false) }
        router.get("/_sim/balance") { _, _ in self.balanceResponse() }
        router.put("/_sim/balance") { request, _ in try await self.setBalance(request) }
        router.get("/_sim/orders") { _, _ in
            let orders = self.state.withLock { Array($0.orders.values) }.sorted { $0.createdAt < $1.createdAt }
            return Self.json(.array(orders.map { $0.json() }))
        }
        router.get("/_sim/orders/:mrn") { _, context in
            let mrn = Self.parameter(context, "mrn")
            guard let order = self.state.withLock({ $0.orders[mrn] }) else {
                return Self.controlError(.notFound, "order_not_found", "no order with mrn \(mrn)")
            }
            return Self.json(order.json())
        }
        router.get("/_sim/callbacks") { _, _ in
            Self.json(.array(self.state.withLock { $0.callbackLog }.map { $0.json() }))
        }
        router.get("/_sim/requests") { _, _ in
            Self.json(.array(self.state.withLock { $0.received }.map { $0.json() }))
        }
        router.get("/_sim/faults") { _, _ in
            Self.json(.array(self.state.withLock { $0.faults }.map { $0.json() }))
        }
        router.post("/_sim/faults") { request, _ in try await self.addFault(request) }
        router.delete("/_sim/faults") { _, _ in
            self.state.withLock { $0.faults.removeAll() }
            return Response(status: .noContent)
        }
        return router
    }

    // MARK: Gateway endpoints

    /// Records the call, applies any fault for `path`, and otherwise answers with `process`, which is given the
    /// hold of a `hold` fault (nil without one).
    func gatewayCall(_ request: Request, path: String, process: ([UInt8], Duration?) async -> Response) async throws -> Response {
        let body = try await Self.collect(request, limit: configuration.maxBodySize)
        let (fault, number) = state.withLock { state in
            let fault = state.takeFault(path: path, kinds: [.delay, .status, .drop, .garbage, .answer, .processedAnswer, .hold])
            let number = state.record(ReceivedRequest(
                method: request.method.rawValue, path: path, query: request.uri.query ?? "",
                contentType: request.headers[.contentType] ?? "", body: String(decoding: body, as: UTF8.self), at: Self.now(),
                fault: fault?.summary
            ))
            return (fault, number)
        }
        defer { state.withLock { $0.answered(number, at: Self.now()) } }
        if let fault { logger.info("fault injected", metadata: ["path": "\(path)", "kind": "\(fault.kind.rawValue)"]) }
        if let fault, fault.kind == .status {
            let code = fault.value?.scalarText.flatMap { Int($0) } ?? 500
            return Response(
                status: HTTPResponse.Status(code: (100...599).contains(code) ? code : 500),
                headers: [.contentType: "text/plain; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: "simulated failure \(code)\n"))
            )
        }
        if let fault, fault.kind == .answer, let value = fault.value {
            return Self.json(value)
        }
        var response = await process(body, fault?.kind == .hold ? fault?.delay : nil)
        switch fault?.kind {
        case .delay:
            if let delay = fault?.delay { try await Task.sleep(for: delay) }
        case .drop:
            response.headers[.simulatorDrop] = "1"
        case .garbage:
            response = Response(
                status: .ok, headers: [.contentType: "text/html"],
                body: .init(byteBuffer: ByteBuffer(string: "<html><body>502 Bad Gateway (upstream garbage)</body>"))
            )
        case .processedAnswer:
            if let value = fault?.value { response = Self.json(value) }
        default:
            break
        }
        return response
    }

    func createDepositAPI(_ request: Request) async throws -> Response {
        try await gatewayCall(request, path: "/api/Pay/Create") { body, hold in
            let answer: DepositCreateAnswer
            let created: Result<SimOrder, GatewayRefusal>
            switch Self.jsonFields(body) {
            case .success(let fields): created = await self.createDeposit(fields, reuseIdentical: false, hold: hold)
            case .failure(let refusal): created = .failure(refusal)
            }
            switch created {
            case .success(let order):
                answer = DepositCreateAnswer(success: true, errorMsg: "", payUrl: "/api/Pay?id=\(order.id)&channel=\(order.channelId ?? 0)")
            case .failure(let refusal):
                answer = DepositCreateAnswer(success: false, errorMsg: "\(refusal.code.rawValue): \(refusal.message)", payUrl: nil)
            }
            return Self.json(bytes: answer.encoded())
        }
    }

    func pagePay(_ request: Request) async throws -> Response {
        try await gatewayCall(request, path: "/api/Pay") { body, _ in
            let fields: [String: String]
            do {
                fields = Dictionary(try FormURLEncoding.decode(body).map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
            } catch {
                return Self.html(CashierPage.error(code: "invalid_data", message: (error as? FormDecodingError)?.message ?? "invalid form"), status: .badRequest)
            }
            switch await self.createDeposit(fields, reuseIdentical: true, hold: nil) {
            case .success(let order):
                return Self.html(CashierPage.cashier(order))
            case .failure(let refusal):
                return Self.html(CashierPage.error(code: refusal.code.rawValue, message: refusal.message), status: .badRequest)
            }
        }
    }

    func cashierForPayURL(_ request: Request) -> Response {
        let query = (try? FormURLEncoding.decode(request.uri.query ?? "")) ?? []
        guard let id = query.first(where: { $0.name == "id" })?.value,
            let order = state.withLock({ state in state.orderIDs[id].flatMap { state.orders[$0] } })
        else {
            return Self.html(CashierPage.error(code: "object_not_found", message: "No such payment."), status: .notFound)
        }
        return Self.html(CashierPage.cashier(order))
    }

    func cashierButton(_ context: BasicRequestContext, paid: Bool) -> Response {
        let id = Self.parameter(context, "id")
        guard let mrn = state.withLock({ $0.orderIDs[id] }) else {
            return Self.html(CashierPage.error(code: "object_not_found", message: "No such payment."), status: .notFound)
        }
        do {
            return Self.html(CashierPage.result(try settle(mrn: mrn, kind: .deposit, paid: paid)))
        } catch {
            let order = state.withLock { $0.orders[mrn] }
            return Self.html(order.map(CashierPage.cashier) ?? "", status: .conflict)
        }
    }

    /// Validates and creates a deposit order, as `/api/Pay` and `/api/Pay/Create` both do. With `hold`, the order
    /// is booked only after it (see `SimulatorState.book`).
    func createDeposit(_ fields: [String: String], reuseIdentical: Bool, hold: Duration?) async -> Result<SimOrder, GatewayRefusal> {
        for name in SignatureLayout.depositRequest.fields + ["sign"] where fields[name] == nil {
            return .failure(GatewayRefusal(code: .invalidData, message: "missing field \(name)"))
        }
        if let refusal = checkMerchant(.depositRequest, fields) { return .failure(refusal) }
        let amountText = fields["amount"]!
        guard let amountFen = AmountText.parse(amountText, maxDecimals: 2, strict: false), amountFen > 0 else {
            return .failure(GatewayRefusal(code: .invalidData, message: "invalid amount"))
        }
        guard let channelId = Int(fields["channelId"]!), Channel.withID(channelId) != nil else {
            return .failure(GatewayRefusal(code: .invalidData, message: "unknown channelId"))
        }
        let mrn = fields["mrn"]!
        if let problem = FieldRules.mrn(mrn) ?? FieldRules.absoluteURL("callbackUrl", fields["callbackUrl"]!) ?? FieldRules.absoluteURL("returnUrl", fields["returnUrl"]!) {
            return .failure(GatewayRefusal(code: .invalidData, message: problem.description))
        }
        let payer = fields["payer"].flatMap { $0.isEmpty ? nil : $0 }
        var result: Result<SimOrder, GatewayRefusal> = state.withLock { state in
            if let existing = state.orders[mrn] {
                if reuseIdentical, existing.kind == .deposit, existing.amountText == amountText, existing.channelId == channelId,
                    existing.callbackUrl == fields["callbackUrl"], existing.returnUrl == fields["returnUrl"]
                {
                    return .success(existing)
                }
                return .failure(GatewayRefusal(code: .mrnDuplication, message: "mrn \(mrn) was used before"))
            }
            let order = SimOrder(
                kind: .deposit, id: state.newOrderID(), mrn: mrn, amountText: amountText, amountFen: amountFen,
                callbackUrl: fields["callbackUrl"]!, channelId: channelId, returnUrl: fields["returnUrl"], payer: payer,
                createdAt: .now
            )
            if hold == nil { state.book(order) }
            return .success(order)
        }
        if let hold, case .success(let order) = result {
            try? await Task.sleep(for: hold)
            result = .success(state.withLock { $0.book(order) })
        }
        if case .success(let order) = result, order.status == .waiting, let delay = configuration.autoSettle {
            jobSink.yield(.settleLater(mrn: order.mrn, after: delay))
        }
        return result
    }

    func createPayout(_ request: Request) async throws -> Response {
        try await gatewayCall(request, path: "/api/Payouts/Create") { body, hold in
            let answer: PayoutCreateAnswer
            let created: Result<SimOrder, GatewayRefusal>
            switch Self.jsonFields(body) {
            case .success(let fields): created = await self.createPayoutOrder(fields, hold: hold)
            case .failure(let refusal): created = .failure(refusal)
            }
            switch created {
            case .success:
                answer = PayoutCreateAnswer(error: .success, errorMessage: "")
            case .failure(let refusal):
                answer = PayoutCreateAnswer(error: refusal.code, errorMessage: refusal.message)
            }
            return Self.json(bytes: answer.encoded())
        }
    }

    /// Validates and books a payout, debiting the balance. With `hold`, the order is booked (visible to queries
    /// and to the mrn check) only after it; the balance is debited at once (see `SimulatorState.book`).
    func createPayoutOrder(_ fields: [String: String], hold: Duration?) async -> Result<SimOrder, GatewayRefusal> {
        for name in SignatureLayout.payoutRequest.fields + ["sign"] where fields[name] == nil {
            return .failure(GatewayRefusal(code: .invalidData, message: "missing field \(name)"))
        }
        if let refusal = checkMerchant(.payoutRequest, fields) { return .failure(refusal) }
        guard let amount = PayoutAmount(fields["amount"]!) else {
            return .failure(GatewayRefusal(code: .invalidData, message: "amount must be a whole number of yuan"))
        }
        let mrn = fields["mrn"]!
        let problem = FieldRules.mrn(mrn) ?? FieldRules.absoluteURL("callbackUrl", fields["callbackUrl"]!)
            ?? FieldRules.text("bankName", fields["bankName"]!) ?? FieldRules.text("accountName", fields["accountName"]!)
            ?? FieldRules.text("accountNumber", fields["accountNumber"]!)
        if let problem { return .failure(GatewayRefusal(code: .invalidData, message: problem.description)) }
        var result: Result<SimOrder, GatewayRefusal> = state.withLock { state in
            if state.orders[mrn] != nil {
                return .failure(GatewayRefusal(code: .mrnDuplication, message: "mrn \(mrn) was used before"))
            }
            guard state.balanceFen >= amount.minorUnits else {
                return .failure(GatewayRefusal(code: .insufficientBalance, message: "balance \(AmountText.yuanText(fen: state.balanceFen)) is below \(amount.text)"))
            }
            state.balanceFen -= amount.minorUnits
            let order = SimOrder(
                kind: .payout, id: state.newOrderID(), mrn: mrn, amountText: amount.text, amountFen: amount.minorUnits,
                callbackUrl: fields["callbackUrl"]!, bankName: fields["bankName"], accountName: fields["accountName"],
                accountNumber: fields["accountNumber"], createdAt: .now
            )
            if hold == nil { state.book(order) }
            return .success(order)
        }
        if let hold, case .success(let order) = result {
            try? await Task.sleep(for: hold)
            result = .success(state.withLock { $0.book(order) })
        }
        if case .success(let order) = result, let delay = configuration.autoSettle {
            jobSink.yield(.settleLater(mrn: order.mrn, after: delay))
        }
        return result
    }

    func query(_ request: Request, kind: OrderKind) async throws -> Response {
        try await gatewayCall(request, path: kind.queryPath) { _, _ in
            let answer: QueryAnswer
            let pairs = (try? FormURLEncoding.decode(request.uri.query ?? "")) ?? []
            let fields = Dictionary(pairs.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
            if fields["appKey"] == nil || fields["mrn"] == nil || fields["sign"] == nil {
                answer = QueryAnswer(error: .invalidData)
            } else if let refusal = checkMerchant(kind.queryLayout, fields) {
                answer = QueryAnswer(error: refusal.code)
            } else if let order = state.withLock({ $0.orders[fields["mrn"]!] }), order.kind == kind {
                answer = QueryAnswer(error: .success, mrn: order.mrn, status: order.status)
                if order.status == .paid, fields["callback"]?.lowercased() == "true" {
                    jobSink.yield(.deliver(mrn: order.mrn))
                }
            } else {
                answer = QueryAnswer(error: .objectNotFound)
            }
            return Self.json(bytes: answer.encoded())
        }
    }

    /// The merchant checks every endpoint makes: a known appKey, then a correct signature.
    func checkMerchant(_ layout: SignatureLayout, _ fields: [String: String]) -> GatewayRefusal? {
        guard fields["appKey"] == configuration.appKey else {
            return GatewayRefusal(code: .objectNotFound, message: "no merchant with this appKey")
        }
        guard GatewaySignature.verify(layout, fields, signature: fields["sign"] ?? "", secret: configuration.secretKey) else {
            return GatewayRefusal(code: .signError, message: "signature does not match")
        }
        return nil
    }

    // MARK: Control API

    func controlSettle(_ request: Request, _ context: BasicRequestContext, kind: OrderKind, paid: Bool) async throws -> Response {
        let mrn = Self.parameter(context, "mrn")
        var paidFen: Int64?
        let body = try await Self.collect(request, limit: configuration.maxBodySize)
        if kind == .deposit, paid, !body.isEmpty {
            guard let object = try? JSONValue.parse(body), object.members != nil else {
                return Self.controlError(.badRequest, "invalid_body", "body must be a JSON object")
            }
            if let amount = object["amount"] {
                guard let text = amount.scalarText, let fen = AmountText.parse(text, maxDecimals: 2, strict: false), fen > 0 else {
                    return Self.controlError(.badRequest, "invalid_amount", "amount must be a positive amount in yuan")
                }
                paidFen = fen
            }
        }
        do {
            return Self.json(try settle(mrn: mrn, kind: kind, paid: paid, paidFen: paidFen).json())
        } catch .notFound {
            return Self.controlError(.notFound, "order_not_found", "no order with mrn \(mrn)")
        } catch .wrongKind {
            return Self.controlError(.notFound, "order_not_found", "mrn \(mrn) is not a \(kind.rawValue)")
        } catch .alreadySettled(let status) {
            return Self.controlError(.conflict, "already_settled", "order \(mrn) is already settled (status \(status.code))")
        }
    }

    func balanceResponse() -> Response {
        let fen = state.withLock { $0.balanceFen }
        return Self.json(.object(["amount": .string(AmountText.yuanText(fen: fen))]))
    }

    func setBalance(_ request: Request) async throws -> Response {
        let body = try await Self.collect(request, limit: configuration.maxBodySize)
        guard let object = try? JSONValue.parse(body), let text = object["amount"]?.scalarText,
            let fen = AmountText.parse(text, maxDecimals: 2, strict: false)
        else {
            return Self.controlError(.badRequest, "invalid_amount", "body must be {\"amount\": <yuan>}")
        }
        state.withLock { $0.balanceFen = fen }
        return balanceResponse()
    }

    func addFault(_ request: Request) async throws -> Response {
        let body = try await Self.collect(request, limit: configuration.maxBodySize)
        guard let object = try? JSONValue.parse(body), object.members != nil else {
            return Self.controlError(.badRequest, "invalid_body", "body must be a JSON object")
        }
        let gatewayPaths = ["/api/Pay", "/api/Pay/Create", "/api/Payments/Query", "/api/Payouts/Create", "/api/Payouts/Query"]
        guard let path = object["path"]?.stringValue, gatewayPaths.contains(path) || path == "callback" else {
            return Self.controlError(.badRequest, "invalid_path", "path must be one of \((gatewayPaths + ["callback"]).joined(separator: ", "))")
        }
        guard let kindText = object["kind"]?.stringValue, let kind = Fault.Kind(rawValue: kindText) else {
            return Self.controlError(.badRequest, "invalid_kind", "kind must be one of \(Fault.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let callbackKinds: Set<Fault.Kind> = [.duplicate, .badSignature, .delay, .drop]
        let httpKinds: Set<Fault.Kind> = [.delay, .status, .drop, .garbage, .answer, .processedAnswer]
        let createPaths: Set<String> = ["/api/Pay/Create", "/api/Payouts/Create"]
        let applies = path == "callback" ? callbackKinds.contains(kind) : httpKinds.contains(kind) || (kind == .hold && createPaths.contains(path))
        guard applies else {
            return Self.controlError(.badRequest, "invalid_kind", "kind \(kind.rawValue) does not apply to \(path)")
        }
        var remaining: Int?
        if let count = object["count"], !count.isNull {
            guard let text = count.numberText, let n = Int(text), n > 0 else {
                return Self.controlError(.badRequest, "invalid_count", "count must be a positive integer")
            }
            remaining = n
        }
        let fault = Fault(path: path, kind: kind, value: object["value"], remaining: remaining)
        if kind == .delay || kind == .hold, fault.delay == nil {
            return Self.controlError(.badRequest, "invalid_value", "a \(kind.rawValue) needs value: milliseconds or a duration like \"2s\"")
        }
        if kind == .status, fault.value?.scalarText.flatMap({ Int($0) }).map({ (100...599).contains($0) }) != true {
            return Self.controlError(.badRequest, "invalid_value", "a status fault needs value: an HTTP status code")
        }
        if kind == .answer || kind == .processedAnswer, fault.value == nil || fault.value?.isNull == true {
            return Self.controlError(.badRequest, "invalid_value", "an answer fault needs value: the JSON to answer with")
        }
        state.withLock { $0.faults.append(fault) }
        return Self.json(fault.json(), status: .created)
    }

    // MARK: Helpers

    static func collect(_ request: Request, limit: Int) async throws -> [UInt8] {
        let buffer = try await request.body.collect(upTo: limit)
        return Array(buffer.readableBytesView)
    }

    /// A JSON object's members as text (strings, and numbers with their exact characters).
    static func jsonFields(_ body: [UInt8]) -> Result<[String: String], GatewayRefusal> {
        guard let value = try? JSONValue.parse(body), let members = value.members else {
            return .failure(GatewayRefusal(code: .invalidData, message: "body is not a JSON object"))
        }
        var fields: [String: String] = [:]
        for member in members {
            if let text = member.value.scalarText { fields[member.name] = text }
        }
        return .success(fields)
    }

    static func parameter(_ context: BasicRequestContext, _ name: String) -> String {
        let raw = context.parameters.get(name) ?? ""
        return FormURLEncoding.percentDecode(raw) ?? raw
    }

    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        json(bytes: value.encoded(), status: status)
    }

    static func json(bytes: [UInt8], status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func html(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func text(_ text: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func controlError(_ status: HTTPResponse.Status, _ code: String, _ message: String) -> Response {
        json(.object(["error": .string(code), "message": .string(message)]), status: status)
    }
}
