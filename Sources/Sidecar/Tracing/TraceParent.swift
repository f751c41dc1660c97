import HTTPTypes
import Hummingbird
import Tracing

/// The W3C `traceparent` of a create, kept with the order so that the webhooks emitted for it later (when the
/// gateway's callback arrives, or a query finds the outcome) continue the caller's trace.
///
/// With traces exported, the stored value is the create request's own span (a child of what the caller sent), and
/// each webhook attempt is a span under it whose context goes out as the webhook's `traceparent`. Without an
/// exporter nothing is traced, but the caller's header is still kept and passed on as it came, so a consumer's
/// trace continues either way. Only a well-formed version-00 value is ever kept or sent: the header goes out in
/// every webhook, and a caller must not be able to put anything else there.
enum TraceParent {
    static let header = "traceparent"

    /// `value` when it is a valid version-00 `traceparent` (lowercase hex, neither id all zeros), else nil.
    static func validated(_ value: String?) -> String? {
        guard let value else { return nil }
        let bytes = Array(value.utf8)
        guard bytes.count == 55, bytes[0] == UInt8(ascii: "0"), bytes[1] == UInt8(ascii: "0"),
            bytes[2] == UInt8(ascii: "-"), bytes[35] == UInt8(ascii: "-"), bytes[52] == UInt8(ascii: "-")
        else { return nil }
        func hex(_ range: Range<Int>) -> Bool {
            bytes[range].allSatisfy { ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "f")) }
        }
        func zeros(_ range: Range<Int>) -> Bool { bytes[range].allSatisfy { $0 == UInt8(ascii: "0") } }
        guard hex(3..<35), hex(36..<52), hex(53..<55), !zeros(3..<35), !zeros(36..<52) else { return nil }
        return value
    }

    /// The `traceparent` of the span running now, when a tracer is bootstrapped (nil with the no-op tracer).
    static func current() -> String? {
        guard let context = InstrumentationContext.current else { return nil }
        return inject(context)
    }

    /// `context` as a `traceparent` header value, as the bootstrapped instrument writes it.
    static func inject(_ context: InstrumentationContext) -> String? {
        var carrier: [String: String] = [:]
        InstrumentationSystem.instrument.inject(context, into: &carrier, using: DictionaryInjector())
        return validated(carrier[header])
    }

    /// What a create keeps with its order: its request span when traces are exported, else the caller's header.
    static func forCreate(_ request: Request) -> String? {
        current() ?? validated(request.headers[.traceparent])
    }

    /// A context whose parent is `stored` (a top-level one when nothing is stored, or when no tracer reads it).
    static func context(continuing stored: String?) -> InstrumentationContext {
        var context = InstrumentationContext.topLevel
        if let stored {
            InstrumentationSystem.instrument.extract([header: stored], into: &context, using: DictionaryExtractor())
        }
        return context
    }
}

/// Writes a context's headers into a dictionary (what is stored with an order).
struct DictionaryInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        carrier[key] = value
    }
}

/// Reads a stored `traceparent` back as the instrument's context.
struct DictionaryExtractor: Extractor {
    func extract(key: String, from carrier: [String: String]) -> String? {
        carrier[key]
    }
}

/// The callback listener faces the internet: a trace context sent there is not believed (anyone could make the
/// callback's span join, or start, any trace), so the callback's span always starts a trace of its own.
struct UntrustedTraceContextMiddleware: RouterMiddleware {
    typealias Context = SidecarRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.headers[.traceparent] != nil || request.headers[.tracestate] != nil else { return try await next(request, context) }
        var head = request.head
        head.headerFields[.traceparent] = nil
        head.headerFields[.tracestate] = nil
        return try await next(Request(head: head, body: request.body), context)
    }
}

extension HTTPField.Name {
    static let traceparent = HTTPField.Name("traceparent")!
    static let tracestate = HTTPField.Name("tracestate")!
}
