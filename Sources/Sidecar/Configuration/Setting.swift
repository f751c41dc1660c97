/// One configuration setting: its environment variable, its flag, whether it is secret (and so also read
/// from `<NAME>_FILE`), its default and its meaning. The table drives parsing, `--help` and the README.
public struct Setting: Sendable, Hashable {
    public let variable: String
    public let defaultValue: String?
    public let isSecret: Bool
    public let help: String

    /// `--gateway-url` for `PAYSIDECAR_GATEWAY_URL`.
    public var flag: String {
        "--" + String(variable.dropFirst("PAYSIDECAR_".count).lowercased().map { $0 == "_" ? "-" : $0 })
    }

    public var fileVariable: String? { isSecret ? variable + "_FILE" : nil }
    public var fileFlag: String? { isSecret ? flag + "-file" : nil }

    init(_ variable: String, default defaultValue: String? = nil, secret: Bool = false, _ help: String) {
        self.variable = variable
        self.defaultValue = defaultValue
        self.isSecret = secret
        self.help = help
    }
}

extension Setting {
    public static let gatewayURL = Setting("PAYSIDECAR_GATEWAY_URL", "Gateway base URL, e.g. https://pay.example.com (required)")
    public static let appKey = Setting("PAYSIDECAR_APP_KEY", "Merchant appKey (required)")
    public static let secretKey = Setting("PAYSIDECAR_SECRET_KEY", secret: true, "Merchant signing secret; never logged or returned (required)")
    public static let publicURL = Setting("PAYSIDECAR_PUBLIC_URL", "Base URL at which the gateway reaches the callback listener (required)")
    public static let listen = Setting("PAYSIDECAR_LISTEN", default: "127.0.0.1:8080", "Internal API address")
    public static let callbackListen = Setting("PAYSIDECAR_CALLBACK_LISTEN", default: "0.0.0.0:8081", "Callback listener address")
    public static let apiToken = Setting("PAYSIDECAR_API_TOKEN", secret: true, "When set, internal callers must send Authorization: Bearer <token>")
    public static let webhookURL = Setting("PAYSIDECAR_WEBHOOK_URL", "Default internal webhook target")
    public static let webhookSecret = Setting("PAYSIDECAR_WEBHOOK_SECRET", secret: true, "Standard Webhooks secret, whsec_ + base64 (required with WEBHOOK_URL)")
    public static let webhookEndpointsFile = Setting("PAYSIDECAR_WEBHOOK_ENDPOINTS_FILE", "A JSON file of webhook endpoints (id, url, secret or secretFile, types, enabled), reloaded on SIGHUP or a change; instead of PAYSIDECAR_WEBHOOK_URL")
    public static let endpointDisableAfter = Setting("PAYSIDECAR_ENDPOINT_DISABLE_AFTER", default: "120h", "A webhook endpoint that has failed every attempt for this long is disabled until re-enabled (its deliveries are kept)")
    public static let webhookRetrySchedule = Setting("PAYSIDECAR_WEBHOOK_RETRY_SCHEDULE", default: "5s,5m,30m,2h,5h,10h,10h", "Delays between webhook attempts after the first")
    public static let webhookTimeout = Setting("PAYSIDECAR_WEBHOOK_TIMEOUT", default: "15s", "Per-attempt webhook timeout")
    public static let webhookLease = Setting("PAYSIDECAR_WEBHOOK_LEASE", default: "10s", "How long a claim on a webhook being delivered lasts unless renewed (renewed every third of it while the attempt runs); a killed replica's deliveries go to another within it. At least 1s")
    public static let databaseURL = Setting("PAYSIDECAR_DATABASE_URL", default: "sqlite://pay-sidecar.db", "sqlite:///abs/path.db, sqlite://rel.db or postgres://user:password@host:5432/database?sslmode=...")
    public static let databasePassword = Setting("PAYSIDECAR_DATABASE_PASSWORD", secret: true, "PostgreSQL password, when PAYSIDECAR_DATABASE_URL holds none; never logged")
    public static let databasePoolSize = Setting("PAYSIDECAR_DATABASE_POOL_SIZE", default: "10", "PostgreSQL: connections each replica opens at most (2 or more: one listens for outbox notifications)")
    public static let databaseTimeout = Setting("PAYSIDECAR_DATABASE_TIMEOUT", default: "5s", "PostgreSQL: how long one database call may take (waiting for a connection included) before the request fails with 503")
    public static let callbackAllowedIPs = Setting("PAYSIDECAR_CALLBACK_ALLOWED_IPS", "Comma-separated IPs/CIDRs allowed to post callbacks (unset: any)")
    public static let trustedProxies = Setting("PAYSIDECAR_TRUSTED_PROXIES", "Comma-separated IPs/CIDRs of proxies in front of the callback listener whose X-Forwarded-For is believed (unset: none)")
    public static let gatewayTimeout = Setting("PAYSIDECAR_GATEWAY_TIMEOUT", default: "10s", "Total time for one gateway call")
    public static let reconcileAfter = Setting("PAYSIDECAR_RECONCILE_AFTER", default: "60s", "How long an order may stay pending before the sidecar queries it")
    public static let reconcileHorizon = Setting("PAYSIDECAR_RECONCILE_HORIZON", default: "48h", "How long after its creation an unsettled order is still queried")
    public static let journalRetention = Setting("PAYSIDECAR_JOURNAL_RETENTION", default: "720h", "How long settled or refused orders stay in the journal (unsettled ones stay)")
    public static let resendAfter = Setting("PAYSIDECAR_RESEND_AFTER", default: "10m", "An unknown payout the gateway's queries keep calling object_not_found is re-sent (once, same mrn) only when such answers span this long since its first send")
    public static let tombstoneRetention = Setting("PAYSIDECAR_TOMBSTONE_RETENTION", default: "400d", "How long a pruned order's tombstone keeps replayed callbacks for it idempotent")
    public static let eventRetention = Setting("PAYSIDECAR_EVENT_RETENTION", default: "720h", "How long delivered webhook events and their attempts are kept (pending and failed ones stay)")
    public static let headerTimeout = Setting("PAYSIDECAR_HEADER_TIMEOUT", default: "10s", "Both listeners close a connection whose request head is not complete within this")
    public static let idleTimeout = Setting("PAYSIDECAR_IDLE_TIMEOUT", default: "60s", "Both listeners close a keep-alive connection idle for this long")
    public static let maxConnections = Setting("PAYSIDECAR_MAX_CONNECTIONS", default: "1024", "Open connections each listener accepts at most")
    public static let allowUnauthenticatedAPI = Setting("PAYSIDECAR_ALLOW_UNAUTHENTICATED_API", default: "false", "true lets the internal API listen beyond loopback without PAYSIDECAR_API_TOKEN")
    public static let unknownOrderCallbacks = Setting("PAYSIDECAR_UNKNOWN_ORDER_CALLBACKS", default: "accept", "accept or reject callbacks for an mrn this sidecar never created")
    public static let secretGracePeriod = Setting("PAYSIDECAR_SECRET_GRACE_PERIOD", default: "24h", "After a secret is rotated (SIGHUP or a changed *_FILE), how long the previous one stays valid: callbacks signed with it are accepted, webhooks carry both signatures, the previous API token still works; 0 revokes it at once")
    public static let logLevel = Setting("PAYSIDECAR_LOG_LEVEL", default: "info", "trace, debug, info, notice, warning, error, critical")
    public static let logFormat = Setting("PAYSIDECAR_LOG_FORMAT", default: "json", "json or text")

    /// Every setting, in the contract's order (PAYSIDECAR_TRUSTED_PROXIES is ours, next to the allowlist it refines).
    public static let all: [Setting] = [
        .gatewayURL, .appKey, .secretKey, .publicURL, .listen, .callbackListen, .apiToken, .webhookURL, .webhookSecret,
        .webhookEndpointsFile, .endpointDisableAfter, .webhookRetrySchedule, .webhookTimeout, .webhookLease, .databaseURL, .databasePassword, .databasePoolSize, .databaseTimeout, .callbackAllowedIPs, .trustedProxies, .gatewayTimeout, .reconcileAfter,
        .reconcileHorizon, .resendAfter, .journalRetention, .tombstoneRetention, .eventRetention, .unknownOrderCallbacks, .secretGracePeriod,
        .headerTimeout, .idleTimeout, .maxConnections, .allowUnauthenticatedAPI,
        .logLevel, .logFormat,
    ]
}

/// A setting that is missing or malformed. `description` is the one line printed at start-up.
public struct ConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    public let setting: String
    public let message: String

    public init(_ setting: String, _ message: String) {
        self.setting = setting
        self.message = message
    }

    public var description: String { "\(setting): \(message)" }
}
