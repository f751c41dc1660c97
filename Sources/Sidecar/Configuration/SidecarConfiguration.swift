import ConfigurationValues
import GatewayProtocol
import Ledger
import LedgerPostgres
import Logging
import Webhooks

/// Where the sidecar keeps its durable state.
public enum DatabaseLocation: Sendable, Hashable, CustomStringConvertible {
    /// A SQLite file (created if missing). `durable` (the default): a callback's commit reaches the disk
    /// before it is acknowledged (`synchronous=FULL`); `?synchronous=normal` in the URL trades that for speed.
    case sqlite(path: String, durable: Bool)
    /// A PostgreSQL database shared by any number of replicas; its password never prints.
    case postgres(PostgresSettings)

    public var description: String {
        switch self {
        case .sqlite(let path, let durable): return "sqlite://\(path)\(durable ? "" : "?synchronous=normal")"
        case .postgres(let settings): return settings.description
        }
    }
}

/// How log lines are written.
public enum LogFormat: String, Sendable, Hashable {
    case json, text
}

/// Everything the sidecar is configured with (contract section 2), validated.
public struct SidecarConfiguration: Sendable {
    /// Gateway base URL without a trailing slash.
    public var gatewayURL: String
    public var appKey: String
    public var secretKey: MerchantSecret
    /// Public base URL of the callback listener, without a trailing slash.
    public var publicURL: String
    public var listen: ListenAddress
    public var callbackListen: ListenAddress
    public var apiToken: Secret?
    public var webhookURL: String?
    public var webhookSecret: WebhookSecret?
    /// Where webhooks go: the endpoints file's, or PAYSIDECAR_WEBHOOK_URL as the endpoint `default`.
    public var webhookEndpoints: [WebhookEndpoint]
    /// An endpoint failing every attempt for this long is disabled.
    public var endpointDisableAfter: Duration
    public var webhookRetrySchedule: [Duration]
    public var webhookTimeout: Duration
    /// How long a claim on an event being delivered lasts unless renewed.
    public var webhookLease: Duration
    public var database: DatabaseLocation
    /// nil: callbacks from any address.
    public var callbackAllowedIPs: [IPRange]?
    /// Proxies whose X-Forwarded-For is believed; nil: none.
    public var trustedProxies: [IPRange]?
    public var gatewayTimeout: Duration
    public var reconcileAfter: Duration
    public var reconcileHorizon: Duration
    /// An unknown payout is re-sent only once `object_not_found` answers span this long since its first send.
    public var resendAfter: Duration
    public var journalRetention: Duration
    public var tombstoneRetention: Duration
    /// How long delivered events stay in the outbox.
    public var eventRetention: Duration
    /// Both listeners: time allowed for a request head, idle keep-alive time, and open connections at most.
    public var headerTimeout: Duration
    public var idleTimeout: Duration
    public var maxConnections: Int
    /// Whether a callback for an mrn this sidecar never created is accepted (and emitted with knownOrder false).
    public var acceptUnknownOrderCallbacks: Bool
    public var secretGracePeriod: Duration
    public var logLevel: Logger.Level
    public var logFormat: LogFormat
    /// The `*_FILE` paths the secrets were read from; a change to one of them reloads the secrets.
    public var secretFiles: [String]
    /// Reads the secrets again from where they came from (files; flags and the environment do not change),
    /// validated as at start-up.
    public var reloadSecrets: @Sendable () throws(ConfigurationError) -> SecretSet

    /// The three secrets as loaded.
    public var secrets: SecretSet { SecretSet(merchant: secretKey, webhook: webhookSecret, apiToken: apiToken) }

    /// The `callbackUrl` sent with deposits.
    public var depositCallbackURL: String { publicURL + "/callbacks/deposit" }
    /// The `callbackUrl` sent with payouts.
    public var payoutCallbackURL: String { publicURL + "/callbacks/payout" }

    /// Reads every setting: a flag wins over the environment; a secret may come from `<NAME>_FILE`
    /// (or its `--...-file` flag), trimmed. Throws the first missing or malformed setting.
    ///
    /// - Parameters:
    ///   - flags: flag values keyed by the setting's variable name (`PAYSIDECAR_LISTEN`, `PAYSIDECAR_SECRET_KEY_FILE`).
    ///   - environment: the process environment.
    ///   - readFile: reads a secret file (trimmed), nil when unreadable.
    public static func load(
        flags: [String: String],
        environment: [String: String],
        readFile: @escaping @Sendable (String) -> String? = ProcessEnvironment.readTrimmedFile
    ) throws(ConfigurationError) -> SidecarConfiguration {
        var reader = SettingReader(flags: flags, environment: environment, readFile: readFile)
        let gatewayURL = try reader.url(.gatewayURL, required: true)!
        let appKey = try reader.required(.appKey)
        if FieldRules.containsControlCharacter(appKey) || appKey.contains("&") || appKey.contains("=") {
            throw ConfigurationError(Setting.appKey.variable, "must not contain control characters, '&' or '='")
        }
        let secretKey = MerchantSecret(try reader.required(.secretKey))
        let publicURL = try reader.url(.publicURL, required: true)!
        let listen = try reader.listenAddress(.listen)
        let callbackListen = try reader.listenAddress(.callbackListen)
        if listen == callbackListen, listen.port != 0 {
            throw ConfigurationError(Setting.callbackListen.variable, "must differ from \(Setting.listen.variable) (\(listen)): the two listeners are never one")
        }
        let apiToken = try reader.optional(.apiToken).map(Secret.init)
        let webhookURL = try reader.url(.webhookURL, required: false)
        let webhookSecretText = try reader.optional(.webhookSecret)
        if webhookURL != nil, webhookSecretText == nil {
            throw ConfigurationError(Setting.webhookSecret.variable, "is required when \(Setting.webhookURL.variable) is set")
        }
        var webhookSecret: WebhookSecret?
        if let text = webhookSecretText {
            guard let parsed = WebhookSecret(text) else {
                throw ConfigurationError(Setting.webhookSecret.variable, "must be whsec_ followed by base64 of at least 24 bytes")
            }
            webhookSecret = parsed
        }
        var webhookEndpoints: [WebhookEndpoint] = []
        if let path = try reader.optional(.webhookEndpointsFile) {
            guard webhookURL == nil else {
                throw ConfigurationError(Setting.webhookEndpointsFile.variable, "set either it or \(Setting.webhookURL.variable) (the one-endpoint shorthand), not both")
            }
            guard let text = readFile(path) else { throw ConfigurationError(Setting.webhookEndpointsFile.variable, "cannot read \(path)") }
            let folder = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
            var read: [String] = [path]
            webhookEndpoints = try WebhookEndpointsFile.parse(text, folder: folder.isEmpty ? "." : folder) { file in
                read.append(file)
                return readFile(file)
            }
            reader.filesRead += read
        } else if let webhookURL, let webhookSecret {
            webhookEndpoints = [WebhookEndpoint(id: WebhookEndpoint.defaultID, url: webhookURL, secret: webhookSecret)]
        }
        let endpointDisableAfter = try reader.duration(.endpointDisableAfter)
        let schedule = try reader.durationList(.webhookRetrySchedule)
        let webhookTimeout = try reader.duration(.webhookTimeout)
        let webhookLease = try reader.duration(.webhookLease)
        // Renewed every third of it: shorter would ask the database for renewals faster than a loaded one answers.
        guard webhookLease >= .seconds(1) else {
            throw ConfigurationError(Setting.webhookLease.variable, "'\(DurationText.format(webhookLease))' is shorter than 1s")
        }
        let database = try reader.database(.databaseURL)
        let allowed = try reader.ipRanges(.callbackAllowedIPs)
        let trustedProxies = try reader.ipRanges(.trustedProxies)
        let gatewayTimeout = try reader.duration(.gatewayTimeout)
        let reconcileAfter = try reader.duration(.reconcileAfter)
        let reconcileHorizon = try reader.duration(.reconcileHorizon)
        let resendAfter = try reader.duration(.resendAfter)
        let journalRetention = try reader.duration(.journalRetention)
        let tombstoneRetention = try reader.duration(.tombstoneRetention)
        let eventRetention = try reader.duration(.eventRetention)
        let headerTimeout = try reader.duration(.headerTimeout)
        let idleTimeout = try reader.duration(.idleTimeout)
        let maxConnections = try reader.integer(.maxConnections, in: 1...1_000_000)
        let allowUnauthenticated = try reader.boolean(.allowUnauthenticatedAPI)
        if apiToken == nil, !listen.isLoopback, !allowUnauthenticated {
            throw ConfigurationError(Setting.listen.variable, "\(listen) is not a loopback address and PAYSIDECAR_API_TOKEN is not set: anyone who reaches it could move money (set a token, or PAYSIDECAR_ALLOW_UNAUTHENTICATED_API=true if a network policy guards it)")
        }
        let unknownText = try reader.required(.unknownOrderCallbacks).lowercased()
        guard unknownText == "accept" || unknownText == "reject" else {
            throw ConfigurationError(Setting.unknownOrderCallbacks.variable, "'\(unknownText)' is not accept or reject")
        }
        let levelText = try reader.required(.logLevel).lowercased()
        guard let level = Logger.Level(rawValue: levelText) else {
            throw ConfigurationError(Setting.logLevel.variable, "'\(levelText)' is not one of trace, debug, info, notice, warning, error, critical")
        }
        let grace = try reader.duration(.secretGracePeriod, allowZero: true)
        let formatText = try reader.required(.logFormat).lowercased()
        guard let format = LogFormat(rawValue: formatText) else {
            throw ConfigurationError(Setting.logFormat.variable, "'\(formatText)' is not json or text")
        }
        return SidecarConfiguration(
            gatewayURL: gatewayURL, appKey: appKey, secretKey: secretKey, publicURL: publicURL, listen: listen,
            callbackListen: callbackListen, apiToken: apiToken, webhookURL: webhookURL, webhookSecret: webhookSecret,
            webhookEndpoints: webhookEndpoints, endpointDisableAfter: endpointDisableAfter,
            webhookRetrySchedule: schedule, webhookTimeout: webhookTimeout, webhookLease: webhookLease, database: database, callbackAllowedIPs: allowed, trustedProxies: trustedProxies,
            gatewayTimeout: gatewayTimeout, reconcileAfter: reconcileAfter, reconcileHorizon: reconcileHorizon, resendAfter: resendAfter,
            journalRetention: journalRetention, tombstoneRetention: tombstoneRetention, eventRetention: eventRetention,
            headerTimeout: headerTimeout, idleTimeout: idleTimeout, maxConnections: maxConnections, acceptUnknownOrderCallbacks: unknownText == "accept", secretGracePeriod: grace,
            logLevel: level, logFormat: format, secretFiles: reader.filesRead,
            reloadSecrets: { () throws(ConfigurationError) -> SecretSet in
                try SidecarConfiguration.load(flags: flags, environment: environment, readFile: readFile).secrets
            }
        )
    }
}

extension SidecarConfiguration {
    /// One setting alone (flag, environment, `*_FILE`, default), for the command-line tools.
    public static func read(
        _ setting: Setting, flags: [String: String], environment: [String: String],
        readFile: @escaping @Sendable (String) -> String? = ProcessEnvironment.readTrimmedFile
    ) throws(ConfigurationError) -> String? {
        var reader = SettingReader(flags: flags, environment: environment, readFile: readFile)
        return try reader.optional(setting)
    }
}

extension SidecarConfiguration {
    /// `url` read as `serve` reads PAYSIDECAR_DATABASE_URL, with the other database settings (the password, the pool
    /// size, the timeout) from `flags`, the environment and files: for the command-line tools. Errors name
    /// PAYSIDECAR_DATABASE_URL (or the setting at fault) and never the password.
    public static func database(
        url: String, flags: [String: String], environment: [String: String],
        readFile: @escaping @Sendable (String) -> String? = ProcessEnvironment.readTrimmedFile
    ) throws(ConfigurationError) -> DatabaseLocation {
        var withURL = flags
        withURL[Setting.databaseURL.variable] = url
        var reader = SettingReader(flags: withURL, environment: environment, readFile: readFile)
        return try reader.database(.databaseURL)
    }
}

/// Resolves each setting from flags, the environment, files and defaults.
struct SettingReader {
    let flags: [String: String]
    let environment: [String: String]
    let readFile: (String) -> String?
    /// The secret files read so far.
    var filesRead: [String] = []

    /// The raw value, or nil when unset (an empty value counts as unset).
    mutating func optional(_ setting: Setting) throws(ConfigurationError) -> String? {
        func nonEmpty(_ s: String?) -> String? { (s?.isEmpty ?? true) ? nil : s }
        let fileName = setting.fileVariable
        for source in [flags, environment] {
            let direct = nonEmpty(source[setting.variable])
            let file = fileName.flatMap { nonEmpty(source[$0]) }
            if direct != nil, file != nil {
                throw ConfigurationError(setting.variable, "set either \(setting.variable) or \(fileName!), not both")
            }
            if let direct { return direct }
            if let file, let fileName {
                guard let text = readFile(file) else { throw ConfigurationError(fileName, "cannot read \(file)") }
                guard !text.isEmpty else { throw ConfigurationError(fileName, "\(file) is empty") }
                filesRead.append(file)
                return text
            }
        }
        return setting.defaultValue
    }

    mutating func required(_ setting: Setting) throws(ConfigurationError) -> String {
        guard let value = try optional(setting) else {
            throw ConfigurationError(setting.variable, "is required (set \(setting.variable) or \(setting.flag))")
        }
        return value
    }

    mutating func url(_ setting: Setting, required: Bool) throws(ConfigurationError) -> String? {
        guard var value = required ? try self.required(setting) : try optional(setting) else { return nil }
        if FieldRules.absoluteURL(setting.variable, value) != nil || value.contains("?") || value.contains("#") {
            throw ConfigurationError(setting.variable, "'\(value)' is not an absolute http(s) URL without query or fragment")
        }
        while value.hasSuffix("/") { value.removeLast() }
        return value
    }

    mutating func listenAddress(_ setting: Setting) throws(ConfigurationError) -> ListenAddress {
        let text = try required(setting)
        guard let address = ListenAddress(text) else {
            throw ConfigurationError(setting.variable, "'\(text)' is not host:port (e.g. 127.0.0.1:8080)")
        }
        return address
    }

    mutating func duration(_ setting: Setting, allowZero: Bool = false) throws(ConfigurationError) -> Duration {
        let text = try required(setting)
        guard let d = DurationText.parse(text), d > .zero || (allowZero && d == .zero) else {
            throw ConfigurationError(setting.variable, "'\(text)' is not a \(allowZero ? "" : "positive ")duration (e.g. \(allowZero ? "0, " : "")500ms, 10s, 5m, 2h, 30d)")
        }
        return d
    }

    mutating func integer(_ setting: Setting, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        let text = try required(setting)
        guard text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), text.count <= 9, let n = Int(text), range.contains(n) else {
            throw ConfigurationError(setting.variable, "'\(text)' is not a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return n
    }

    mutating func boolean(_ setting: Setting) throws(ConfigurationError) -> Bool {
        let text = try required(setting).lowercased()
        switch text {
        case "true", "1", "yes": return true
        case "false", "0", "no": return false
        default: throw ConfigurationError(setting.variable, "'\(text)' is not true or false")
        }
    }

    mutating func durationList(_ setting: Setting) throws(ConfigurationError) -> [Duration] {
        let text = try required(setting)
        guard let list = DurationText.parseList(text), list.allSatisfy({ $0 >= .zero }) else {
            throw ConfigurationError(setting.variable, "'\(text)' is not a comma-separated list of durations (e.g. 5s,5m,30m)")
        }
        return list
    }

    mutating func database(_ setting: Setting) throws(ConfigurationError) -> DatabaseLocation {
        let text = try required(setting)
        // PostgreSQL's own settings, checked whichever database is named so that a typo never waits for a move.
        // Two at least: one is held for LISTEN (the outbox's wake-ups), the others run the statements.
        let poolSize = try integer(.databasePoolSize, in: 2...1000)
        let timeout = try duration(.databaseTimeout)
        if text.hasPrefix("sqlite://") {
            var path = String(text.dropFirst("sqlite://".count))
            var durable = true
            if let question = path.firstIndex(of: "?") {
                let query = path[path.index(after: question)...].lowercased()
                path = String(path[..<question])
                switch query {
                case "synchronous=full": durable = true
                case "synchronous=normal": durable = false
                default: throw ConfigurationError(setting.variable, "the only SQLite option is ?synchronous=full (default) or ?synchronous=normal")
                }
            }
            guard !path.isEmpty, !path.hasSuffix("/") else {
                throw ConfigurationError(setting.variable, "'\(text)' names no file (e.g. sqlite:///var/lib/pay-sidecar/pay.db)")
            }
            return .sqlite(path: path, durable: durable)
        }
        if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            // Read only for PostgreSQL, so that a password file is neither read nor watched with SQLite.
            let password = try optional(.databasePassword)
            do {
                return .postgres(try PostgresSettings(url: text, password: password, poolSize: poolSize, timeout: timeout))
            } catch {
                throw ConfigurationError(setting.variable, error.message)
            }
        }
        throw ConfigurationError(setting.variable, "must start with sqlite:// or postgres://")
    }

    mutating func ipRanges(_ setting: Setting) throws(ConfigurationError) -> [IPRange]? {
        guard let text = try optional(setting) else { return nil }
        var ranges: [IPRange] = []
        for part in text.split(separator: ",") {
            let item = String(part).trimmingSpaces()
            if item.isEmpty { continue }
            guard let range = IPRange(item) else {
                throw ConfigurationError(setting.variable, "'\(item)' is not an IP address or CIDR range")
            }
            ranges.append(range)
        }
        guard !ranges.isEmpty else { throw ConfigurationError(setting.variable, "lists no address") }
        return ranges
    }
}
