import Foundation
import TestSupport

/// A span as an OTLP collector received it.
struct CollectedSpan: Sendable, CustomStringConvertible {
    var traceID: String
    var spanID: String
    /// nil for a root span.
    var parentSpanID: String?
    var name: String
    /// OTLP's numbers: 1 internal, 2 server, 3 client.
    var kind: Int
    /// Every attribute's value as text.
    var attributes: [String: String]
    /// OTLP's status code: 0 unset, 1 ok, 2 error.
    var statusCode: Int
    /// The resource's `service.name`.
    var serviceName: String?

    var description: String { "\(name) [\(traceID)/\(spanID) <- \(parentSpanID ?? "root")] \(attributes)" }
}

/// A small OTLP/HTTP collector on 127.0.0.1 for the tests: it answers every export with success, keeps what
/// arrived, and decodes OTLP's JSON encoding (`OTEL_EXPORTER_OTLP_PROTOCOL=http/json`) into spans.
final class OTLPCollector: Sendable {
    let server: TestHTTPServer

    static func start() async throws -> OTLPCollector {
        let server = try await TestHTTPServer.start { _ in
            TestHTTPResponse(status: 200, headers: [("Content-Type", "application/json")], text: "{}")
        }
        return OTLPCollector(server: server)
    }

    private init(server: TestHTTPServer) {
        self.server = server
    }

    /// What `OTEL_EXPORTER_OTLP_ENDPOINT` names (traces go to `/v1/traces` under it).
    var endpoint: String { server.baseURL }

    /// Every request that arrived, whatever its path or encoding.
    var requests: [ReceivedHTTPRequest] { server.requests }

    /// Every span of every JSON export to `/v1/traces`, in arrival order.
    var spans: [CollectedSpan] {
        server.requests.filter { $0.uri == "/v1/traces" }.flatMap { Self.decode($0.body) }
    }

    func stop() async throws {
        try await server.stop()
    }

    /// An `ExportTraceServiceRequest` in OTLP's JSON encoding. Ids may come as hex (as the OTLP specification writes
    /// them) or as base64 (protobuf's JSON mapping of bytes): both are read, and returned as lowercase hex.
    static func decode(_ body: [UInt8]) -> [CollectedSpan] {
        guard let root = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { return [] }
        var result: [CollectedSpan] = []
        for resourceSpans in root["resourceSpans"] as? [[String: Any]] ?? [] {
            let resource = attributes((resourceSpans["resource"] as? [String: Any])?["attributes"])
            for scopeSpans in resourceSpans["scopeSpans"] as? [[String: Any]] ?? [] {
                for span in scopeSpans["spans"] as? [[String: Any]] ?? [] {
                    let parent = hex(span["parentSpanId"] as? String ?? "")
                    result.append(CollectedSpan(
                        traceID: hex(span["traceId"] as? String ?? ""), spanID: hex(span["spanId"] as? String ?? ""),
                        parentSpanID: parent.isEmpty ? nil : parent, name: span["name"] as? String ?? "",
                        kind: number(span["kind"]) ?? 0, attributes: attributes(span["attributes"]),
                        statusCode: number((span["status"] as? [String: Any])?["code"]) ?? 0, serviceName: resource["service.name"]
                    ))
                }
            }
        }
        return result
    }

    static func attributes(_ list: Any?) -> [String: String] {
        var result: [String: String] = [:]
        for attribute in list as? [[String: Any]] ?? [] {
            guard let key = attribute["key"] as? String, let value = attribute["value"] as? [String: Any] else { continue }
            result[key] = text(value)
        }
        return result
    }

    /// An `AnyValue` as text (arrays joined with commas).
    static func text(_ value: [String: Any]) -> String {
        if let string = value["stringValue"] as? String { return string }
        if let int = value["intValue"] { return "\(int)" }
        if let bool = value["boolValue"] as? Bool { return bool ? "true" : "false" }
        if let double = value["doubleValue"] { return "\(double)" }
        if let array = (value["arrayValue"] as? [String: Any])?["values"] as? [[String: Any]] { return array.map(text).joined(separator: ",") }
        return ""
    }

    static func number(_ value: Any?) -> Int? {
        if let int = value as? Int { return int }
        if let string = value as? String { return Int(string) }
        return nil
    }

    static func hex(_ id: String) -> String {
        let isHex = (id.count == 32 || id.count == 16) && id.allSatisfy { $0.isHexDigit }
        if isHex || id.isEmpty { return id.lowercased() }
        guard let bytes = Data(base64Encoded: id) else { return id }
        return bytes.map { String(format: "%02x", $0) }.joined()
    }
}

/// A fresh W3C `traceparent` for a caller: its trace id and span id, sampled.
func callerTraceParent() -> (header: String, traceID: String, spanID: String) {
    func randomHex(_ bytes: Int) -> String { (0..<bytes).map { _ in String(format: "%02x", UInt8.random(in: 1...255)) }.joined() }
    let traceID = randomHex(16)
    let spanID = randomHex(8)
    return ("00-\(traceID)-\(spanID)-01", traceID, spanID)
}

/// The trace id and parent span id of a `traceparent` header value.
func parseTraceParent(_ value: String?) -> (traceID: String, spanID: String)? {
    guard let parts = value?.split(separator: "-"), parts.count == 4, parts[1].count == 32, parts[2].count == 16 else { return nil }
    return (String(parts[1]), String(parts[2]))
}
