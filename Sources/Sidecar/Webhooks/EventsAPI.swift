import GatewayProtocol
import Hummingbird
import Ledger
import Orders

/// `GET /v1/events`, `GET /v1/events/{id}`, `POST /v1/events/{id}/redeliver`: the webhooks the sidecar emitted.
struct EventsAPI: Sendable {
    let ledger: any Ledger
    let onRedeliver: @Sendable () -> Void

    func register(on router: Router<SidecarRequestContext>) {
        router.get("/v1/events") { request, _ in try await list(request) }
        router.get("/v1/events/:id") { _, context in
            let id = context.parameters.get("id") ?? ""
            guard let (event, attempts) = try await storage({ try await ledger.event(id: id) }) else { throw Self.notFound(id) }
            var json = Self.json(event)
            if case .object(var members) = json {
                members.append(.init("deliveryAttempts", .array(attempts.map(Self.json))))
                json = .object(members)
            }
            return Sidecar.json(json)
        }
        router.post("/v1/events/:id/redeliver") { _, context in
            let id = context.parameters.get("id") ?? ""
            guard let event = try await storage({ try await ledger.redeliver(id: id, at: nowMillis()) }) else { throw Self.notFound(id) }
            onRedeliver()
            return Sidecar.json(Self.json(event), status: .accepted)
        }
    }

    func list(_ request: Request) async throws -> Response {
        var query = EventQuery()
        var problems: [FieldProblem] = []
        for (name, value) in (try? FormURLEncoding.decode(request.uri.query ?? "")) ?? [] {
            switch name {
            case "status":
                if let s = EventStatus(rawValue: value) { query.status = s } else { problems.append(FieldProblem(field: "status", message: "must be pending, delivered or failed")) }
            case "type":
                if let type = EventType(rawValue: value) { query.type = type }
                else { problems.append(FieldProblem(field: "type", message: "must be one of \(EventType.allCases.map(\.rawValue).joined(separator: ", "))")) }
            case "mrn":
                if let p = FieldRules.mrn(value) { problems.append(p) } else { query.mrn = value }
            case "limit":
                if let n = Int(value), (1...100).contains(n) { query.limit = n } else { problems.append(FieldProblem(field: "limit", message: "must be 1 to 100")) }
            case "after":
                query.after = value
            default:
                problems.append(FieldProblem(field: name, message: "is not a known query parameter (allowed: status, type, mrn, limit, after)"))
            }
        }
        guard problems.isEmpty else { throw Problem.invalid(problems) }
        let wanted = query.limit
        query.limit = wanted + 1
        let events = try await storage { try await ledger.events(query) }
        let page = Array(events.prefix(wanted))
        var members: [JSONValue.JSONMember] = [
            .init("data", .array(page.map(Self.json))),
            .init("hasMore", .bool(events.count > wanted)),
        ]
        if events.count > wanted, let last = page.last { members.append(.init("nextCursor", .string(last.id))) }
        return Sidecar.json(.object(members))
    }

    static func notFound(_ id: String) -> Problem {
        Problem(.notFound, code: "event_not_found", title: "Event not found", detail: "no event with id \(id)")
    }

    static func json(_ event: OutboxEvent) -> JSONValue {
        .object([
            "id": .string(event.id),
            "type": .string(event.type.rawValue),
            "mrn": .string(event.mrn),
            "status": .string(event.status.rawValue),
            "attempts": .number(String(event.attempts)),
            "nextAttemptAt": event.nextAttemptAt.map { .string(rfc3339($0)) } ?? .null,
            "lastError": event.lastError.map(JSONValue.string) ?? .null,
            "target": event.notifyUrl.map(JSONValue.string) ?? .null,
            "createdAt": .string(rfc3339(event.createdAt)),
            "deliveredAt": event.deliveredAt.map { .string(rfc3339($0)) } ?? .null,
            "payload": (try? JSONValue.parse(event.body)) ?? .string(event.body),
        ])
    }

    static func json(_ attempt: DeliveryAttempt) -> JSONValue {
        .object([
            "attempt": .number(String(attempt.attempt)),
            "url": .string(attempt.url),
            "statusCode": attempt.statusCode.map { .number(String($0)) } ?? .null,
            "error": attempt.error.map(JSONValue.string) ?? .null,
            "durationMs": .number(String(attempt.durationMillis)),
            "at": .string(rfc3339(attempt.at)),
        ])
    }
}
