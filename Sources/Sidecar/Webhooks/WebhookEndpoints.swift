import ConfigurationValues
import GatewayProtocol
import Orders
import Synchronization
import Webhooks

/// Which event types an endpoint receives: an exact type (`payout.succeeded`), a kind (`deposit.*`), an
/// outcome across kinds (`*.flagged`), or everything (`*`).
public struct EventTypeFilter: Sendable, Hashable, CustomStringConvertible {
    public let pattern: String

    /// Nil unless `pattern` is one of the four forms and matches at least one event type.
    public init?(_ pattern: String) {
        let parts = pattern.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard pattern == "*" || (parts.count == 2 && !parts[0].isEmpty && !parts[1].isEmpty && !(parts[0] == "*" && parts[1] == "*")) else { return nil }
        self.pattern = pattern
        guard EventType.allCases.contains(where: matches) else { return nil }
    }

    public func matches(_ type: EventType) -> Bool {
        if pattern == "*" { return true }
        let parts = pattern.split(separator: ".", omittingEmptySubsequences: false)
        let wanted = type.rawValue.split(separator: ".", omittingEmptySubsequences: false)
        return zip(parts, wanted).allSatisfy { $0 == "*" || $0 == $1 }
    }

    public var description: String { pattern }
}

/// One internal webhook receiver: where events go, how they are signed, which ones it wants.
public struct WebhookEndpoint: Sendable, Hashable {
    /// Stable name (`billing`): the deliveries, the API and the metrics use it. `default` is
    /// `PAYSIDECAR_WEBHOOK_URL`'s; `notify_url` stands for orders' own `notifyUrl`.
    public var id: String
    public var url: String
    public var secret: WebhookSecret
    /// Nil: every type.
    public var types: [EventTypeFilter]?
    /// False in the file: configured but not sent to (its deliveries wait).
    public var enabled: Bool

    public init(id: String, url: String, secret: WebhookSecret, types: [EventTypeFilter]? = nil, enabled: Bool = true) {
        self.id = id
        self.url = url
        self.secret = secret
        self.types = types
        self.enabled = enabled
    }

    public func accepts(_ type: EventType) -> Bool {
        types.map { filters in filters.contains { $0.matches(type) } } ?? true
    }

    /// The endpoint id of the orders' own `notifyUrl`s (a target per URL, signed with PAYSIDECAR_WEBHOOK_SECRET).
    public static let notifyURL = "notify_url"
    /// The endpoint id PAYSIDECAR_WEBHOOK_URL stands for.
    public static let defaultID = "default"
}

/// Reads PAYSIDECAR_WEBHOOK_ENDPOINTS_FILE:
/// `{"endpoints":[{"id":"billing","url":"http://...","secret":"whsec_...","types":["deposit.*"],"enabled":true}]}`,
/// `secretFile` instead of `secret` (a path, relative ones from the file's folder), `types` absent meaning all.
/// Every problem is a `ConfigurationError` naming the setting and the endpoint, never a secret.
public enum WebhookEndpointsFile {
    static let fields: Set<String> = ["id", "url", "secret", "secretFile", "types", "enabled"]

    public static func parse(_ text: String, folder: String, readFile: (String) -> String?) throws(ConfigurationError) -> [WebhookEndpoint] {
        let setting = Setting.webhookEndpointsFile.variable
        func fail(_ message: String) -> ConfigurationError { ConfigurationError(setting, message) }
        guard let document = try? JSONValue.parse(Array(text.utf8)), let members = document.members else {
            throw fail("is not a JSON object ({\"endpoints\":[...]})")
        }
        guard members.allSatisfy({ $0.name == "endpoints" }), let list = document["endpoints"]?.elements else {
            throw fail("must be {\"endpoints\":[...]} and nothing else")
        }
        var endpoints: [WebhookEndpoint] = []
        for (index, item) in list.enumerated() {
            guard let object = item.members else { throw fail("endpoint \(index + 1) is not an object") }
            let name = item["id"]?.stringValue ?? "\(index + 1)"
            func problem(_ message: String) -> ConfigurationError { fail("endpoint \(name): \(message)") }
            if let unknown = object.first(where: { !fields.contains($0.name) }) {
                throw problem("'\(unknown.name)' is not a known field (allowed: id, url, secret, secretFile, types, enabled)")
            }
            guard let id = item["id"]?.stringValue, (1...64).contains(id.count),
                  id.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x5F }) else {
                throw problem("'id' must be 1 to 64 of a-z, 0-9, - and _")
            }
            guard id != WebhookEndpoint.notifyURL else { throw problem("'\(id)' is reserved for orders' notifyUrl") }
            guard !endpoints.contains(where: { $0.id == id }) else { throw problem("the id appears twice") }
            guard let url = item["url"]?.stringValue, FieldRules.absoluteURL("url", url) == nil else { throw problem("'url' must be an absolute http(s) URL") }
            let secretText: String
            switch (item["secret"]?.stringValue, item["secretFile"]?.stringValue) {
            case (let text?, nil):
                secretText = text
            case (nil, let path?):
                let full = path.hasPrefix("/") ? path : folder + "/" + path
                guard let text = readFile(full) else { throw problem("cannot read its secretFile \(full)") }
                secretText = text
            default:
                throw problem("needs exactly one of 'secret' and 'secretFile'")
            }
            guard let secret = WebhookSecret(secretText) else { throw problem("the secret must be whsec_ followed by base64 of at least 24 bytes") }
            var types: [EventTypeFilter]?
            if let value = item["types"] {
                guard let patterns = value.elements, !patterns.isEmpty else { throw problem("'types' must be a non-empty array (leave it out for every type)") }
                types = []
                for pattern in patterns {
                    guard let text = pattern.stringValue, let filter = EventTypeFilter(text) else {
                        throw problem("'\(pattern.scalarText ?? "?")' is not an event type pattern (e.g. deposit.*, payout.succeeded, *.flagged)")
                    }
                    types?.append(filter)
                }
            }
            var enabled = true
            if let value = item["enabled"] {
                guard let flag = value.boolValue else { throw problem("'enabled' must be true or false") }
                enabled = flag
            }
            endpoints.append(WebhookEndpoint(id: id, url: url, secret: secret, types: types, enabled: enabled))
        }
        guard !endpoints.isEmpty else { throw fail("lists no endpoint") }
        return endpoints
    }
}

/// The endpoints in use, replaceable while the sidecar runs (SIGHUP, or a changed endpoints file). A changed
/// secret keeps its previous value for the grace period: the endpoint's webhooks carry both signatures.
public final class WebhookEndpoints: Sendable {
    private struct State {
        var endpoints: [WebhookEndpoint]
        /// Previous secrets by endpoint id, until their grace period ends.
        var previous: [String: (secret: WebhookSecret, until: ContinuousClock.Instant)] = [:]
    }

    private let state: Mutex<State>
    private let grace: Duration
    private let now: @Sendable () -> ContinuousClock.Instant

    public init(_ endpoints: [WebhookEndpoint], grace: Duration, now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }) {
        self.state = Mutex(State(endpoints: endpoints))
        self.grace = grace
        self.now = now
    }

    public var all: [WebhookEndpoint] { state.withLock { $0.endpoints } }

    public func endpoint(_ id: String) -> WebhookEndpoint? { state.withLock { state in state.endpoints.first { $0.id == id } } }

    /// The endpoints an event of `type` goes to (enabled or not in the file: a disabled one's deliveries wait).
    public func targets(for type: EventType) -> [WebhookEndpoint] {
        state.withLock { $0.endpoints.filter { $0.accepts(type) } }
    }

    /// Signs for endpoint `id`: its secret, and the previous one during a rotation's grace period.
    public func signer(for id: String) -> WebhookSigner? {
        let at = now()
        return state.withLock { state in
            guard let endpoint = state.endpoints.first(where: { $0.id == id }) else { return nil }
            var secrets = [endpoint.secret]
            if let previous = state.previous[id], previous.until > at, previous.secret != endpoint.secret { secrets.append(previous.secret) }
            return WebhookSigner(secrets: secrets)
        }
    }

    /// Puts `endpoints` in use; returns the ids whose secret changed.
    @discardableResult
    public func replace(with endpoints: [WebhookEndpoint]) -> [String] {
        let until = now() + grace
        return state.withLock { state in
            var rotated: [String] = []
            for endpoint in endpoints {
                if let old = state.endpoints.first(where: { $0.id == endpoint.id }), old.secret != endpoint.secret {
                    state.previous[endpoint.id] = (old.secret, until)
                    rotated.append(endpoint.id)
                }
            }
            state.endpoints = endpoints
            return rotated
        }
    }

    /// Ends every previous secret's grace period now.
    public func revokePrevious() -> [String] {
        let at = now()
        return state.withLock { state in
            let valid = state.previous.filter { $0.value.until > at }.map(\.key).sorted()
            state.previous.removeAll()
            return valid
        }
    }
}
