import ConfigurationValues
import Crypto
import GatewayProtocol
import HTTPTypes
import Hummingbird
import Ledger
import NIOCore
import Orders

/// `/console`: a small web page on the internal listener for the people around the sidecar. Orders that need a
/// person come first (flags, unknown outcomes, past the reconcile horizon), then the activity of the last hours,
/// the endpoints, the events that wait or failed with their attempts, and recent orders; actions are plain forms
/// (redeliver an event, recover a range). Server-rendered, readable without JavaScript.
///
/// With PAYSIDECAR_API_TOKEN set, a browser signs in once with the token (`/console/login`): the console sets a
/// cookie holding an HMAC of the token (never the token itself), `HttpOnly`, `SameSite=Strict` (so no other site
/// can make the browser act here), limited to `/console`.
struct ConsoleAPI: Sendable {
    let configuration: SidecarConfiguration
    let ledger: any Ledger
    let secrets: SecretStore
    let onRedeliver: @Sendable () -> Void

    static let cookieName = "paysidecar_console"

    func register(on router: Router<SidecarRequestContext>) {
        router.get("/console") { request, _ in try await overview(request) }
        router.get("/console/orders/:kind/:mrn") { _, context in try await order(context) }
        router.post("/console/events/:id/redeliver") { _, context in try await redeliver(context) }
        router.get("/console/login") { request, _ in login(error: nil, next: request.uri.queryParameters.get("next")) }
        router.post("/console/login") { request, _ in try await signIn(request) }
        router.post("/console/logout") { _, _ in
            var response = Self.redirect("/console/login")
            response.headers[.setCookie] = "\(Self.cookieName)=; Path=/console; Max-Age=0; HttpOnly; SameSite=Strict"
            return response
        }
    }

    // MARK: Pages

    func overview(_ request: Request) async throws -> Response {
        let now = nowMillis()
        let (flaggedOrders, openOrders, closedOrders, failedEvents, pendingEvents, buckets) = try await storage {
            (try await ledger.flaggedOrders(limit: 100), try await ledger.openOrders(limit: 500), try await ledger.recentlyClosedOrders(limit: 25),
             try await ledger.events(EventQuery(status: .failed, limit: 50)), try await ledger.events(EventQuery(status: .pending, limit: 50)),
             try await ledger.activity(since: now - 24 * 3_600_000, bucket: 3_600_000))
        }

        // What needs a person: flagged orders (most recent first), then unknown outcomes still being queried.
        let unknown = openOrders.filter { $0.state == .unknown && $0.flag == nil }
        let attention = flaggedOrders + unknown
        var body = ""
        if let notice = request.uri.queryParameters.get("notice") {
            body += "<div class=\"notice\" data-test=\"notice\">\(HTML.escape(notice))</div>"
        }
        body += "<section id=\"attention\"><h2>Needs a person (\(attention.count))</h2>"
        body += HTML.table(["order", "state", "flag", "detail", "amount", "paid", "changed"], attention.map(Self.attentionRow), id: "attention-orders",
                           empty: "Nothing: no flags, no unknown outcomes.")
        body += "</section>"

        body += "<section id=\"activity\"><h2>Last 24 hours</h2>"
        body += HTML.activityChart(buckets) { rfc3339($0).dropFirst(11).prefix(5).description }
        body += "</section>"

        body += "<section id=\"endpoints\"><h2>Webhook endpoints</h2>"
        body += HTML.table(["endpoint", "URL", "types", "enabled"], configuration.webhookEndpoints.map { endpoint in
            [HTML.escape(endpoint.id), "<span class=\"mono\">\(HTML.escape(URLText.redacted(endpoint.url)))</span>",
             HTML.escape(endpoint.types.map { $0.map(\.pattern).joined(separator: ", ") } ?? "all"), endpoint.enabled ? "yes" : "no (in the file)"]
        }, empty: "None configured (PAYSIDECAR_WEBHOOK_URL or PAYSIDECAR_WEBHOOK_ENDPOINTS_FILE); orders' own notifyUrl only.")
        body += "</section>"

        body += "<section id=\"events\"><h2>Events that failed (\(failedEvents.count))</h2>"
        body += HTML.table(["event", "type", "order", "attempts", "last error", "created", ""], failedEvents.map(eventRow), id: "failed-events",
                           empty: "No failed event.")
        body += "<h2 style=\"margin-top:16px\">Waiting for delivery (\(pendingEvents.count))</h2>"
        body += HTML.table(["event", "type", "order", "attempts", "last error", "created", ""], pendingEvents.map(eventRow), id: "pending-events",
                           empty: "The outbox is empty.")
        body += "</section>"

        body += "<section id=\"orders\"><h2>Orders still followed (\(min(openOrders.count, 50)) of \(openOrders.count))</h2>"
        body += HTML.table(["order", "state", "amount", "created", "next query"], openOrders.prefix(50).map { order in
            [Self.orderLink(order), Self.state(order.state), HTML.escape(order.amount), Self.time(order.createdAt), order.nextQueryAt.map(Self.time) ?? "—"]
        }, empty: "None.")
        body += "<h2 style=\"margin-top:16px\">Recently final</h2>"
        body += HTML.table(["order", "state", "amount", "paid", "source", "final"], closedOrders.map { order in
            [Self.orderLink(order), Self.state(order.state), HTML.escape(order.amount), HTML.escape(order.paidAmount ?? "—"),
             HTML.escape(order.settledSource?.rawValue ?? order.gatewayCode ?? "—"), order.closedAt.map(Self.time) ?? "—"]
        }, empty: "None yet.")
        body += "</section>"
        if !secrets.apiTokens.isEmpty { body += HTML.button("Sign out", action: "/console/logout") }
        return Self.html(HTML.page(title: "pay-sidecar console", body: body))
    }

    func order(_ context: SidecarRequestContext) async throws -> Response {
        guard let kind = context.parameters.get("kind").flatMap(OrderKind.init(rawValue:)),
              let mrn = context.parameters.get("mrn").flatMap(FormURLEncoding.percentDecode) else { throw Problem.notFound }
        let journaled = try await storage { try await ledger.journaled(kind, mrn) }
        let events = try await storage { try await ledger.events(EventQuery(mrn: mrn, limit: 100)) }.filter { $0.kind == kind }
        var body = "<section><h2>\(HTML.escape(kind.rawValue)) \(HTML.escape(mrn))</h2>"
        switch journaled {
        case .nothing:
            body += "<p class=\"empty\">The journal does not know this order.</p>"
        case .tombstone(let tombstone):
            body += "<p>Pruned: \(Self.state(tombstone.outcome)); settlement event \(HTML.escape(tombstone.settlementEventID ?? "—")).</p>"
        case .order(let order):
            let facts: [(String, String)] = [
                ("state", Self.state(order.state)), ("amount", HTML.escape(order.amount)),
                ("paid", HTML.escape(order.paidAmount ?? "not confirmed")), ("created by this sidecar", order.createdBySidecar ? "yes" : "no"),
                ("gateway code", HTML.escape(order.gatewayCode ?? "—")), ("sends", String(order.sendCount)),
                ("queries", String(order.queryCount)), ("next query", order.nextQueryAt.map(Self.time) ?? "—"),
                ("created", Self.time(order.createdAt)), ("changed", Self.time(order.updatedAt)),
            ]
            body += HTML.table(["", ""], facts.map { [HTML.escape($0.0), $0.1] }, empty: "")
            body += "<h2 style=\"margin-top:16px\">Flags</h2>"
            body += HTML.table(["flag", "detail", "at"], order.flags.reversed().map { flag in
                ["<span class=\"flag\">\(HTML.escape(flag.code.rawValue))</span>", HTML.escape(flag.detail), Self.time(flag.at)]
            }, empty: "None.")
        }
        body += "<h2 style=\"margin-top:16px\">Events</h2>"
        body += HTML.table(["event", "type", "order", "attempts", "last error", "created", ""], events.map(eventRow), empty: "None.")
        body += "</section>"
        return Self.html(HTML.page(title: "\(kind.rawValue) \(mrn) · pay-sidecar", body: body))
    }

    // MARK: Actions

    func redeliver(_ context: SidecarRequestContext) async throws -> Response {
        let id = context.parameters.get("id") ?? ""
        guard try await storage({ try await ledger.redeliver(id: id, at: nowMillis()) }) != nil else { throw EventsAPI.notFound(id) }
        onRedeliver()
        return Self.redirect("/console?notice=" + FormURLEncoding.percentEncode("Event \(id) queued again") + "#events")
    }

    // MARK: Signing in

    func login(error: String?, next: String?) -> Response {
        var body = "<section style=\"max-width:420px\"><h2>Sign in</h2>"
        if let error { body += "<p class=\"flag\">\(HTML.escape(error))</p>" }
        body += """
            <form method="post" action="/console/login"><p>The internal API's token (PAYSIDECAR_API_TOKEN):</p>
            <p><input type="password" name="token" autocomplete="current-password" style="width:100%" autofocus></p>
            <p><button type="submit">Sign in</button></p></form></section>
            """
        return Self.html(HTML.page(title: "Sign in · pay-sidecar", body: body), status: error == nil ? .ok : .unauthorized)
    }

    func signIn(_ request: Request) async throws -> Response {
        let form = try await request.body.collect(upTo: 4096)
        let token = (try? FormURLEncoding.decode(form.readableBytesView))?.first { $0.name == "token" }?.value ?? ""
        guard let cookie = Self.cookieValue(for: token, valid: secrets.apiTokens) else {
            return login(error: "That is not the API token.", next: nil)
        }
        var response = Self.redirect("/console")
        response.headers[.setCookie] = "\(Self.cookieName)=\(cookie); Path=/console; HttpOnly; SameSite=Strict"
        return response
    }

    /// The cookie for `token` when it is one of `valid`: an HMAC of the token, so the cookie never holds it.
    static func cookieValue(for token: String, valid: [Secret]) -> String? {
        let given = Array(token.utf8)
        guard valid.contains(where: { constantTimeEquals(given, Array($0.reveal().utf8)) }) else { return nil }
        return sessionValue(token)
    }

    static func sessionValue(_ token: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array("pay-sidecar console session".utf8), using: SymmetricKey(data: Array(token.utf8)))
        return mac.map { byte in String(byte, radix: 16).count == 1 ? "0" + String(byte, radix: 16) : String(byte, radix: 16) }.joined()
    }

    /// True when the request carries the session cookie of one of `tokens`.
    static func hasSession(_ request: Request, tokens: [Secret]) -> Bool {
        let cookies = request.headers[values: .cookie].flatMap { $0.split(separator: ";") }.map { String($0).trimmingSpaces() }
        guard let value = cookies.first(where: { $0.hasPrefix(cookieName + "=") })?.dropFirst(cookieName.count + 1) else { return false }
        let given = Array(value.utf8)
        return tokens.contains { constantTimeEquals(given, Array(sessionValue($0.reveal()).utf8)) }
    }

    // MARK: Pieces

    static func attentionRow(_ order: Order) -> [String] {
        let flag = order.flag.map { "<span class=\"flag\">\(HTML.escape($0.code.rawValue))</span>" } ?? "<span class=\"flag\">unknown outcome</span>"
        let detail = order.flag?.detail ?? "sent, but whether the gateway has it is not known; being queried (gateway code \(order.gatewayCode ?? "—"))"
        return [orderLink(order), state(order.state), flag, HTML.escape(detail), HTML.escape(order.amount), HTML.escape(order.paidAmount ?? "—"), time(order.updatedAt)]
    }

    func eventRow(_ event: OutboxEvent) -> [String] {
        [
            "<details><summary class=\"mono\">\(HTML.escape(event.id))</summary><pre class=\"mono\">\(HTML.escape(event.body))</pre></details>",
            HTML.escape(event.type.rawValue),
            "<a href=\"/console/orders/\(event.kind.rawValue)/\(HTML.escape(FormURLEncoding.percentEncode(event.mrn)))\">\(HTML.escape(event.mrn))</a>",
            String(event.attempts) + " " + Self.state(event.status.rawValue),
            HTML.escape(event.lastError ?? "—"),
            Self.time(event.createdAt),
            HTML.button("Redeliver", action: "/console/events/\(FormURLEncoding.percentEncode(event.id))/redeliver", testID: "redeliver-\(event.id)"),
        ]
    }

    static func orderLink(_ order: Order) -> String {
        "<a href=\"/console/orders/\(order.kind.rawValue)/\(HTML.escape(FormURLEncoding.percentEncode(order.mrn)))\">\(order.kind.rawValue) \(HTML.escape(order.mrn))</a>"
    }

    static func state(_ state: OrderState) -> String { self.state(state.rawValue) }

    static func state(_ text: String) -> String {
        "<span class=\"state state-\(HTML.escape(text))\">\(HTML.escape(text))</span>"
    }

    static func time(_ millis: Millis) -> String {
        // 2026-12-02 13:04:05Z: to the second, UTC.
        let text = rfc3339(millis)
        return "<span class=\"mono\">\(text.prefix(10)) \(text.dropFirst(11).prefix(8))Z</span>"
    }

    static func html(_ page: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                 body: .init(byteBuffer: ByteBuffer(string: page)))
    }

    /// After a form: see the result where it shows (303, so a reload does not post again).
    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location])
    }
}
