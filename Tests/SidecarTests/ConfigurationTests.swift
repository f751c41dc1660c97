import ConfigurationValues
import GatewayProtocol
import LedgerPostgres
import Logging
import Foundation
import Orders
import Testing
import Webhooks

@testable import Sidecar

let required = [
    "PAYSIDECAR_GATEWAY_URL": "https://pay.example.com/",
    "PAYSIDECAR_APP_KEY": "mch_1",
    "PAYSIDECAR_SECRET_KEY": "s3cret",
    "PAYSIDECAR_PUBLIC_URL": "https://cb.shop.example",
]

func load(flags: [String: String] = [:], env: [String: String] = required, files: [String: String] = [:]) throws(ConfigurationError) -> SidecarConfiguration {
    try SidecarConfiguration.load(flags: flags, environment: env, readFile: { files[$0] })
}

@Suite("Configuration")
struct ConfigurationTests {
    @Test("defaults of contract section 2")
    func defaults() throws {
        let c = try load()
        #expect(c.gatewayURL == "https://pay.example.com")
        #expect(c.listen == ListenAddress(host: "127.0.0.1", port: 8080))
        #expect(c.callbackListen == ListenAddress(host: "0.0.0.0", port: 8081))
        #expect(c.depositCallbackURL == "https://cb.shop.example/callbacks/deposit")
        #expect(c.payoutCallbackURL == "https://cb.shop.example/callbacks/payout")
        #expect(c.webhookRetrySchedule == [.seconds(5), .seconds(300), .seconds(1800), .seconds(7200), .seconds(18000), .seconds(36000), .seconds(36000)])
        #expect(c.webhookTimeout == .seconds(15))
        #expect(c.webhookLease == .seconds(10))
        #expect(c.gatewayTimeout == .seconds(10))
        #expect(c.reconcileAfter == .seconds(60))
        #expect(c.database == .sqlite(path: "pay-sidecar.db", durable: true))
        #expect(c.callbackAllowedIPs == nil)
        #expect(c.apiToken == nil)
        #expect(c.logLevel == .info)
        #expect(c.logFormat == .json)
    }

    @Test("a flag wins over the environment; secrets come from *_FILE, trimmed")
    func precedence() throws {
        let c = try load(
            flags: ["PAYSIDECAR_LISTEN": "127.0.0.1:9000", "PAYSIDECAR_API_TOKEN_FILE": "/run/secrets/token"],
            env: required.merging(["PAYSIDECAR_LISTEN": "127.0.0.1:7000", "PAYSIDECAR_API_TOKEN": "from-env"]) { $1 },
            files: ["/run/secrets/token": "from-file"]
        )
        #expect(c.listen.port == 9000)
        #expect(c.apiToken?.reveal() == "from-file")
        var env = required
        env["PAYSIDECAR_SECRET_KEY"] = nil
        env["PAYSIDECAR_SECRET_KEY_FILE"] = "/s"
        let fromFile = try load(env: env, files: ["/s": "file-secret"])
        #expect(fromFile.secretKey == .init("file-secret"))
    }

    @Test("database, allowlist, webhook settings parse")
    func parsing() throws {
        let c = try load(env: required.merging([
            "PAYSIDECAR_DATABASE_URL": "sqlite:///var/lib/pay/pay.db",
            "PAYSIDECAR_CALLBACK_ALLOWED_IPS": "203.0.113.7, 10.0.0.0/8,2001:db8::/32",
            "PAYSIDECAR_WEBHOOK_URL": "http://app.internal/hooks",
            "PAYSIDECAR_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "PAYSIDECAR_WEBHOOK_RETRY_SCHEDULE": "1s,500ms",
        ]) { $1 })
        #expect(c.database == .sqlite(path: "/var/lib/pay/pay.db", durable: true))
        #expect(try load(env: required.merging(["PAYSIDECAR_DATABASE_URL": "sqlite://rel.db?synchronous=normal"]) { $1 }).database == .sqlite(path: "rel.db", durable: false))
        #expect(c.callbackAllowedIPs?.count == 3)
        #expect(c.callbackAllowedIPs?[1].contains("10.1.2.3") == true)
        #expect(c.callbackAllowedIPs?[2].contains("2001:db8::1") == true)
        #expect(c.callbackAllowedIPs?[0].contains("203.0.113.8") == false)
        #expect(c.webhookRetrySchedule == [.seconds(1), .milliseconds(500)])
        let postgres = try load(env: required.merging(["PAYSIDECAR_DATABASE_URL": "postgres://u:p4ss@db/pay?sslmode=require"]) { $1 }).database
        #expect(postgres.description == "postgres://db:5432/pay", "no user, password or options")
        guard case .postgres(let settings) = postgres else { Issue.record("not PostgreSQL: \(postgres)"); return }
        #expect(settings.sslMode == .require && settings.poolSize == 10 && settings.timeout == .seconds(5))
        let fromFile = try load(env: required.merging(["PAYSIDECAR_DATABASE_URL": "postgresql://u@db/pay", "PAYSIDECAR_DATABASE_PASSWORD_FILE": "/run/secrets/db",
                                                       "PAYSIDECAR_DATABASE_POOL_SIZE": "3", "PAYSIDECAR_DATABASE_TIMEOUT": "2s"]) { $1 },
                                files: ["/run/secrets/db": "db-pw"])
        guard case .postgres(let filed) = fromFile.database else { Issue.record("not PostgreSQL"); return }
        #expect(filed.poolSize == 3 && filed.timeout == .seconds(2) && fromFile.secretFiles == ["/run/secrets/db"])
        var dumped = ""
        dump(fromFile, to: &dumped)
        #expect(!dumped.contains("db-pw") && !dumped.contains("p4ss"))
    }

    @Test("missing or malformed settings name the setting", arguments: [
        ("PAYSIDECAR_GATEWAY_URL", nil, "PAYSIDECAR_GATEWAY_URL"),
        ("PAYSIDECAR_GATEWAY_URL", "pay.example.com", "PAYSIDECAR_GATEWAY_URL"),
        ("PAYSIDECAR_GATEWAY_URL", "https://pay.example.com/?x=1", "PAYSIDECAR_GATEWAY_URL"),
        ("PAYSIDECAR_APP_KEY", nil, "PAYSIDECAR_APP_KEY"),
        ("PAYSIDECAR_APP_KEY", "a&b", "PAYSIDECAR_APP_KEY"),
        ("PAYSIDECAR_SECRET_KEY", nil, "PAYSIDECAR_SECRET_KEY"),
        ("PAYSIDECAR_PUBLIC_URL", "ftp://x", "PAYSIDECAR_PUBLIC_URL"),
        ("PAYSIDECAR_LISTEN", "8080", "PAYSIDECAR_LISTEN"),
        ("PAYSIDECAR_CALLBACK_LISTEN", "127.0.0.1:8080", "PAYSIDECAR_CALLBACK_LISTEN"),
        ("PAYSIDECAR_CALLBACK_LISTEN", "::1:8081", "PAYSIDECAR_CALLBACK_LISTEN"),
        ("PAYSIDECAR_WEBHOOK_URL", "http://app/hooks", "PAYSIDECAR_WEBHOOK_SECRET"),
        ("PAYSIDECAR_WEBHOOK_SECRET", "hunter2", "PAYSIDECAR_WEBHOOK_SECRET"),
        ("PAYSIDECAR_WEBHOOK_RETRY_SCHEDULE", "5s,,1m", "PAYSIDECAR_WEBHOOK_RETRY_SCHEDULE"),
        ("PAYSIDECAR_WEBHOOK_TIMEOUT", "0s", "PAYSIDECAR_WEBHOOK_TIMEOUT"),
        ("PAYSIDECAR_WEBHOOK_LEASE", "500ms", "PAYSIDECAR_WEBHOOK_LEASE"),
        ("PAYSIDECAR_DATABASE_URL", "mysql://x", "PAYSIDECAR_DATABASE_URL"),
        ("PAYSIDECAR_DATABASE_URL", "sqlite://", "PAYSIDECAR_DATABASE_URL"),
        ("PAYSIDECAR_DATABASE_URL", "sqlite://x.db?synchronous=off", "PAYSIDECAR_DATABASE_URL"),
        ("PAYSIDECAR_DATABASE_URL", "postgres://db/pay", "PAYSIDECAR_DATABASE_URL"),
        ("PAYSIDECAR_DATABASE_URL", "postgres://u@db/pay?sslmode=maybe", "PAYSIDECAR_DATABASE_URL"),
        ("PAYSIDECAR_DATABASE_POOL_SIZE", "1", "PAYSIDECAR_DATABASE_POOL_SIZE"),
        ("PAYSIDECAR_DATABASE_TIMEOUT", "soon", "PAYSIDECAR_DATABASE_TIMEOUT"),
        ("PAYSIDECAR_CALLBACK_ALLOWED_IPS", "10.0.0.0/33", "PAYSIDECAR_CALLBACK_ALLOWED_IPS"),
        ("PAYSIDECAR_CALLBACK_ALLOWED_IPS", "gateway.example", "PAYSIDECAR_CALLBACK_ALLOWED_IPS"),
        ("PAYSIDECAR_GATEWAY_TIMEOUT", "10 seconds", "PAYSIDECAR_GATEWAY_TIMEOUT"),
        ("PAYSIDECAR_RECONCILE_AFTER", "-1s", "PAYSIDECAR_RECONCILE_AFTER"),
        ("PAYSIDECAR_LOG_LEVEL", "verbose", "PAYSIDECAR_LOG_LEVEL"),
        ("PAYSIDECAR_LOG_FORMAT", "xml", "PAYSIDECAR_LOG_FORMAT"),
        ("PAYSIDECAR_SECRET_KEY_FILE", "/missing", "PAYSIDECAR_SECRET_KEY"),
        ("PAYSIDECAR_API_TOKEN_FILE", "/missing", "PAYSIDECAR_API_TOKEN_FILE"),
    ] as [(String, String?, String)])
    func invalid(variable: String, value: String?, named: String) {
        var env = required
        env[variable] = value
        #expect {
            try load(env: env)
        } throws: { error in
            guard let error = error as? ConfigurationError else { return false }
            return error.setting == named && !error.message.isEmpty && !error.description.contains("\n")
        }
    }

    @Test("secrets never print")
    func redaction() throws {
        let c = try load(env: required.merging(["PAYSIDECAR_API_TOKEN": "tok-123", "PAYSIDECAR_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]) { $1 })
        var dumped = ""
        dump(c, to: &dumped)
        #expect(!dumped.contains("s3cret"))
        #expect(!dumped.contains("tok-123"))
        #expect(!dumped.contains("MfKQ9r8"))
        #expect(!"\(c)".contains("s3cret"))
    }

    @Test("every setting has a flag named after its variable")
    func flags() {
        #expect(Set(Setting.all.map(\.variable)).count == Setting.all.count, "each setting once")
        #expect(Set(Setting.all.map(\.flag)).count == Setting.all.count)
        #expect(Setting.gatewayURL.flag == "--gateway-url")
        #expect(Setting.callbackAllowedIPs.flag == "--callback-allowed-ips")
        #expect(Setting.secretKey.fileFlag == "--secret-key-file")
        #expect(Setting.all.filter(\.isSecret).map(\.variable) == ["PAYSIDECAR_SECRET_KEY", "PAYSIDECAR_API_TOKEN", "PAYSIDECAR_WEBHOOK_SECRET",
                                                                 "PAYSIDECAR_DATABASE_PASSWORD"])
    }

    @Test("money safety settings (contract section 9): defaults, validation, and no unauthenticated internal API beyond loopback")
    func safetySettings() throws {
        let c = try load()
        #expect(c.resendAfter == .seconds(600) && c.tombstoneRetention == .seconds(400 * 86_400) && c.eventRetention == .seconds(720 * 3600))
        #expect(c.headerTimeout == .seconds(10) && c.idleTimeout == .seconds(60) && c.maxConnections == 1024)
        #expect(try load(env: required.merging(["PAYSIDECAR_SECRET_GRACE_PERIOD": "0"]) { $1 }).secretGracePeriod == .zero, "0 revokes at once")
        #expect(throws: ConfigurationError("PAYSIDECAR_MAX_CONNECTIONS", "'0' is not a whole number from 1 to 1000000")) {
            try load(env: required.merging(["PAYSIDECAR_MAX_CONNECTIONS": "0"]) { $1 })
        }
        #expect(throws: ConfigurationError("PAYSIDECAR_RESEND_AFTER", "'0' is not a positive duration (e.g. 500ms, 10s, 5m, 2h, 30d)")) {
            try load(env: required.merging(["PAYSIDECAR_RESEND_AFTER": "0"]) { $1 })
        }
        for open in ["0.0.0.0:8080", "10.1.2.3:8080", "[::]:8080", ":8080"] {
            do {
                _ = try load(env: required.merging(["PAYSIDECAR_LISTEN": open]) { $1 })
                Issue.record("\(open) without a token started")
            } catch {
                #expect(error.setting == "PAYSIDECAR_LISTEN" && error.message.contains("PAYSIDECAR_API_TOKEN"), "\(error)")
            }
            #expect(throws: Never.self) { try load(env: required.merging(["PAYSIDECAR_LISTEN": open, "PAYSIDECAR_API_TOKEN": "t"]) { $1 }) }
            #expect(throws: Never.self) { try load(env: required.merging(["PAYSIDECAR_LISTEN": open, "PAYSIDECAR_ALLOW_UNAUTHENTICATED_API": "true"]) { $1 }) }
        }
        for loopback in ["127.0.0.1:8080", "127.8.9.10:1", "[::1]:8080", "localhost:8080"] {
            #expect(throws: Never.self) { try load(env: required.merging(["PAYSIDECAR_LISTEN": loopback]) { $1 }) }
        }
        #expect(throws: ConfigurationError("PAYSIDECAR_ALLOW_UNAUTHENTICATED_API", "'maybe' is not true or false")) {
            try load(env: required.merging(["PAYSIDECAR_ALLOW_UNAUTHENTICATED_API": "maybe"]) { $1 })
        }
    }

    @Test("webhook endpoints from a JSON file: ids, URLs, secrets or secret files, type filters, enabled; every problem named")
    func endpointsFile() throws {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        let file = #"{"endpoints":[{"id":"billing","url":"http://127.0.0.1:9/in?token=t","secret":"\#(secret)","types":["deposit.*","*.flagged"]},{"id":"ledger-2","url":"https://l.example/h","secretFile":"s/ledger","enabled":false}]}"#
        let files = ["/etc/hooks/endpoints.json": file, "/etc/hooks/s/ledger": secret]
        let c = try load(env: required.merging(["PAYSIDECAR_WEBHOOK_ENDPOINTS_FILE": "/etc/hooks/endpoints.json"]) { $1 }, files: files)
        #expect(c.webhookEndpoints.map(\.id) == ["billing", "ledger-2"])
        #expect(c.webhookEndpoints[0].accepts(.depositSucceeded) && c.webhookEndpoints[0].accepts(.payoutFlagged) && !c.webhookEndpoints[0].accepts(.payoutSucceeded))
        #expect(c.webhookEndpoints[1].types == nil && !c.webhookEndpoints[1].enabled && c.webhookEndpoints[1].secret == WebhookSecret(secret))
        #expect(c.secretFiles.contains("/etc/hooks/endpoints.json") && c.secretFiles.contains("/etc/hooks/s/ledger"), "watched for changes")
        // PAYSIDECAR_WEBHOOK_URL is the one-endpoint shorthand.
        let short = try load(env: required.merging(["PAYSIDECAR_WEBHOOK_URL": "http://127.0.0.1:9/hooks", "PAYSIDECAR_WEBHOOK_SECRET": secret]) { $1 })
        #expect(short.webhookEndpoints.map(\.id) == ["default"] && short.webhookEndpoints[0].types == nil)
        let bad: [(String, String)] = [
            (#"{"endpoints":[]}"#, "lists no endpoint"),
            (#"{"endpoints":[{"id":"Bad Id","url":"http://x/","secret":"\#(secret)"}]}"#, "'id' must be"),
            (#"{"endpoints":[{"id":"a","url":"ftp://x/","secret":"\#(secret)"}]}"#, "'url'"),
            (#"{"endpoints":[{"id":"a","url":"http://x/","secret":"nope"}]}"#, "whsec_"),
            (#"{"endpoints":[{"id":"a","url":"http://x/"}]}"#, "exactly one of 'secret' and 'secretFile'"),
            (#"{"endpoints":[{"id":"a","url":"http://x/","secret":"\#(secret)","types":["refund.*"]}]}"#, "'refund.*' is not an event type pattern"),
            (#"{"endpoints":[{"id":"a","url":"http://x/","secret":"\#(secret)","colour":"red"}]}"#, "'colour' is not a known field"),
            (#"{"endpoints":[{"id":"a","url":"http://x/","secret":"\#(secret)"},{"id":"a","url":"http://y/","secret":"\#(secret)"}]}"#, "appears twice"),
            (#"{"endpoints":[{"id":"notify_url","url":"http://x/","secret":"\#(secret)"}]}"#, "reserved"),
            ("not json", "not a JSON object"),
        ]
        for (text, message) in bad {
            do {
                _ = try load(env: required.merging(["PAYSIDECAR_WEBHOOK_ENDPOINTS_FILE": "/e.json"]) { $1 }, files: ["/e.json": text])
                Issue.record("accepted: \(text)")
            } catch {
                #expect(error.setting == "PAYSIDECAR_WEBHOOK_ENDPOINTS_FILE" && error.message.contains(message), "\(error)")
                #expect(!error.message.contains("MfKQ9r8"), "never the secret")
            }
        }
        #expect(throws: ConfigurationError.self) {
            try load(env: required.merging(["PAYSIDECAR_WEBHOOK_ENDPOINTS_FILE": "/e.json", "PAYSIDECAR_WEBHOOK_URL": "http://x/", "PAYSIDECAR_WEBHOOK_SECRET": secret]) { $1 },
                     files: ["/e.json": file])
        }
    }

    @Test("URLs in logs and errors lose their userinfo, query and fragment")
    func redactedURLs() {
        #expect(URLText.redacted("https://user:pw@hooks.example:8443/in?token=x#f") == "https://hooks.example:8443/in")
        #expect(URLText.redacted("http://hooks.example/a@b?x=1") == "http://hooks.example/a@b")
        #expect(URLText.redacted("https://pay.example.com") == "https://pay.example.com")
        #expect(URLText.redacted("postgres://app:secret@db:5432/pay?sslmode=require") == "postgres://db:5432/pay")
    }

    @Test("addresses and durations")
    func values() {
        #expect(ListenAddress("[::1]:8080") == ListenAddress(host: "::1", port: 8080))
        #expect(ListenAddress(":8081") == ListenAddress(host: "0.0.0.0", port: 8081))
        #expect(ListenAddress("localhost:65536") == nil)
        #expect(DurationText.parse("250ms") == .milliseconds(250))
        #expect(DurationText.parse("2h") == .seconds(7200))
        #expect(DurationText.parse("1.5s") == nil)
        #expect(DurationText.format(.seconds(300)) == "5m")
        #expect(IPRange("::ffff:0:0/96") != nil)
        #expect(IPRange("10.0.0.0/8")?.contains("::ffff:10.1.1.1") == true)
        #expect(IPRange("::1")?.contains("::1") == true)
        #expect(IPRange("1::2::3") == nil)
        #expect(IPRange("01.2.3.4") == nil)
        #expect(IPRange("fe80::1%eth0") == nil)
        #expect(IPRange("2001:db8::/32")?.description == "2001:db8:0:0:0:0:0:0/32")
    }
}
