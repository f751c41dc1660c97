import GatewayProtocol
import HTTPTypes
import Hummingbird
import NIOCore

/// An error answer in RFC 9457 form (`application/problem+json`) with a stable machine-readable `code`.
public struct Problem: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var code: String
    public var title: String
    public var detail: String
    /// The offending fields of invalid input.
    public var errors: [FieldProblem] = []
    /// Extra members, e.g. `orderStatus`.
    public var extensions: [JSONValue.JSONMember] = []
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, code: String, title: String, detail: String) {
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
    }

    public var json: JSONValue {
        var members: [JSONValue.JSONMember] = [
            .init("type", .string("urn:pay-sidecar:problem:\(code)")),
            .init("title", .string(title)),
            .init("status", .number(String(status.code))),
            .init("detail", .string(detail)),
            .init("code", .string(code)),
        ]
        if !errors.isEmpty {
            members.append(.init("errors", .array(errors.map { .object(["field": .string($0.field), "message": .string($0.message)]) })))
        }
        members.append(contentsOf: extensions)
        return .object(members)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var fields = headers
        fields[.contentType] = "application/problem+json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: json.encoded())))
    }
}

extension Problem {
    static func invalid(_ errors: [FieldProblem]) -> Problem {
        var p = Problem(.unprocessableContent, code: "invalid_request", title: "Invalid request", detail: errors.count == 1 ? "\(errors[0])" : "\(errors.count) fields are invalid; see errors")
        p.errors = errors
        return p
    }

    static func invalidJSON(_ detail: String) -> Problem {
        Problem(.badRequest, code: "invalid_json", title: "Body is not valid JSON", detail: detail)
    }

    static let notFound = Problem(.notFound, code: "not_found", title: "Not found", detail: "no such route")

    static func unauthorized(_ detail: String) -> Problem {
        var p = Problem(.unauthorized, code: "unauthorized", title: "Unauthorized", detail: detail)
        p.headers[.wwwAuthenticate] = #"Bearer realm="pay-sidecar""#
        return p
    }

    static let tooLarge = Problem(.contentTooLarge, code: "payload_too_large", title: "Body too large", detail: "the body is larger than 64 KiB")

    static func unsupportedMediaType(_ type: String) -> Problem {
        Problem(.unsupportedMediaType, code: "unsupported_media_type", title: "Unsupported media type", detail: "send application/json, not \(type)")
    }

    static let internalError = Problem(.internalServerError, code: "internal_error", title: "Internal error", detail: "the sidecar failed to handle this request; see its logs")

    /// For a failed gateway call. A create whose request may have reached the gateway says its outcome is unknown.
    static func gateway(_ failure: GatewayCallFailure, isCreate: Bool) -> Problem {
        var p: Problem
        switch failure.kind {
        case .unavailable: p = Problem(.badGateway, code: "gateway_unavailable", title: "Gateway unavailable", detail: failure.detail)
        case .timeout: p = Problem(.gatewayTimeout, code: "gateway_timeout", title: "Gateway timeout", detail: failure.detail)
        case .badResponse: p = Problem(.badGateway, code: "gateway_bad_response", title: "Unreadable gateway answer", detail: failure.detail)
        }
        if isCreate, failure.requestSent {
            p.extensions.append(.init("orderStatus", .string("unknown")))
            p.detail += "; the order may or may not have been created: query it before retrying"
        }
        return p
    }

    /// For a gateway error code (payouts document five; deposits use the same words in errorMsg).
    static func gatewayRefused(_ code: GatewayResultCode, message: String?) -> Problem {
        let detail = (message?.isEmpty ?? true) ? "the gateway refused the request (\(code.rawValue))" : "the gateway refused the request: \(message!)"
        switch code {
        case .invalidData: return Problem(.unprocessableContent, code: code.rawValue, title: "Gateway: invalid data", detail: detail)
        case .mrnDuplication: return Problem(.conflict, code: code.rawValue, title: "Gateway: mrn already used", detail: detail)
        case .insufficientBalance: return Problem(.unprocessableContent, code: code.rawValue, title: "Gateway: insufficient balance", detail: detail)
        case .signError: return Problem(.badGateway, code: code.rawValue, title: "Gateway rejected the signature (check PAYSIDECAR_SECRET_KEY)", detail: detail)
        case .objectNotFound: return Problem(.badGateway, code: code.rawValue, title: "Gateway does not know this merchant (check PAYSIDECAR_APP_KEY)", detail: detail)
        default: return Problem(.badGateway, code: code.rawValue, title: "Gateway refused the request", detail: detail)
        }
    }
}

/// Runs a ledger call, turning a storage failure into a 503 problem.
func storage<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch {
        throw Problem(.serviceUnavailable, code: "storage_unavailable", title: "Storage unavailable", detail: "the sidecar's database did not answer; retry later")
    }
}
