import ArgumentParser
import ConfigurationValues
import CurlHTTP
import Foundation
import GatewayProtocol
import Sidecar

/// Where the tools find the merchant secret and appKey: the same settings as `serve`.
struct MerchantOptions: ParsableArguments {
    @Option(name: .customLong("secret-key"), help: "Merchant secret [env: PAYSIDECAR_SECRET_KEY]") var secretKey: String?
    @Option(name: .customLong("secret-key-file"), help: "Read the merchant secret from this file [env: PAYSIDECAR_SECRET_KEY_FILE]") var secretKeyFile: String?
    @Option(name: .customLong("app-key"), help: "Merchant appKey [env: PAYSIDECAR_APP_KEY]") var appKey: String?

    var flags: [String: String] {
        var flags: [String: String] = [:]
        flags[Setting.secretKey.variable] = secretKey
        flags[Setting.secretKey.fileVariable!] = secretKeyFile
        flags[Setting.appKey.variable] = appKey
        return flags
    }

    func secret() throws -> MerchantSecret {
        guard let text = try readSetting(.secretKey, flags: flags) else {
            throw failStartup("\(Setting.secretKey.variable): is required (set it, \(Setting.secretKey.fileVariable!), or --secret-key-file)")
        }
        return MerchantSecret(text)
    }

    func resolvedAppKey() throws -> String? {
        try readSetting(.appKey, flags: flags)
    }
}

/// One setting as `serve` would read it; a bad one exits with code 2 and one line.
func readSetting(_ setting: Setting, flags: [String: String]) throws -> String? {
    let result = Result { () throws(ConfigurationError) -> String? in
        try SidecarConfiguration.read(setting, flags: flags, environment: ProcessEnvironment.read())
    }
    switch result {
    case .success(let value): return value
    case .failure(let error): throw failStartup(error.description)
    }
}

/// `pay-sidecar sign <message> field=value ...`
struct Sign: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the canonical string (secret masked) and the signature of a gateway message.",
        discussion: """
            Messages: \(SignatureDoctor.layoutNames) (or with '-').
            The appKey comes from PAYSIDECAR_APP_KEY unless given as a field. Fields outside the message's
            signed list are reported and ignored. Example:
              pay-sidecar sign payout_request mrn=P-1 amount=500 bankName=ICBC accountName=张三 accountNumber=6222 callbackUrl=https://cb.example/callbacks/payout
            """
    )

    @Argument(help: "The message: \(SignatureDoctor.layoutNames).") var message: String
    @Argument(help: "Fields as name=value (values as the gateway reads them, not percent-encoded).") var fields: [String] = []
    @OptionGroup var merchant: MerchantOptions

    func run() throws {
        guard let layout = SignatureDoctor.layout(named: message) else {
            throw failStartup("sign: '\(message)' is not a message; one of \(SignatureDoctor.layoutNames)")
        }
        var values: [String: String] = [:]
        for field in fields {
            guard let equals = field.firstIndex(of: "="), equals != field.startIndex else {
                throw failStartup("sign: '\(field)' is not name=value")
            }
            values[String(field[..<equals])] = String(field[field.index(after: equals)...])
        }
        if values["appKey"] == nil, let appKey = try merchant.resolvedAppKey() { values["appKey"] = appKey }
        let secret = try merchant.secret()
        do {
            for line in try SignatureDoctor.sign(layout, fields: values, secret: secret) { print(line) }
        } catch {
            throw failStartup("sign: \(error.field) is missing; \(layout.rawValue) signs \(layout.fields.joined(separator: ", "))")
        }
    }
}

/// `pay-sidecar verify-callback [body]`
struct VerifyCallback: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-callback",
        abstract: "Check a raw callback body as the gateway posted it, and explain which field or signature is wrong.",
        discussion: """
            The body is form-encoded, e.g. 'amount=100.00&appKey=...&channel=2&mrn=D-1&originAmount=100&sign=...'
            (from the sidecar's refused-callback log, or a capture). Without an argument (or with '-') it is read
            from standard input. Exit code 0: the sidecar would accept it; 1: it would refuse it; 2: usage.
            """
    )

    @Argument(help: "The raw body; '-' or nothing reads standard input.") var body: String?
    @Option(help: "deposit or payout (default: guessed from the fields).") var kind: String?
    @Option(name: .customLong("previous-secret-key"), help: "Also accept this previous merchant secret (a rotation's grace period).")
    var previousSecretKey: String?
    @OptionGroup var merchant: MerchantOptions

    func run() throws {
        var kind: OrderKind?
        if let text = self.kind {
            guard let parsed = OrderKind(rawValue: text.lowercased()) else { throw failStartup("verify-callback: --kind must be deposit or payout") }
            kind = parsed
        }
        let raw: [UInt8]
        if let body, body != "-" {
            raw = Array(body.utf8)
        } else {
            raw = Array(FileHandle.standardInput.readDataToEndOfFile())
        }
        let trimmed = Array(String(decoding: raw, as: UTF8.self).trimmingSpaces().utf8)
        guard !trimmed.isEmpty else { throw failStartup("verify-callback: the body is empty") }
        let secrets = [try merchant.secret()] + (previousSecretKey.map { [MerchantSecret($0)] } ?? [])
        let verdict = SignatureDoctor.verifyCallback(body: trimmed, kind: kind, appKey: try merchant.resolvedAppKey(), secrets: secrets)
        for line in verdict.lines { print(line) }
        print(verdict.valid ? "VALID: the sidecar would accept this callback" : "INVALID: the sidecar would refuse this callback")
        if !verdict.valid { throw ExitCode(1) }
    }
}

/// `pay-sidecar events list|show|redeliver`: the events API from a shell.
struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, show and redeliver the webhooks the sidecar emitted (talks to the internal API).",
        subcommands: [List.self, Show.self, Redeliver.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List events, newest first.")
        @Option(help: "pending, delivered or failed.") var status: String?
        @Option(help: "deposit.succeeded, deposit.failed, deposit.flagged, payout.succeeded, payout.failed or payout.flagged.") var type: String?
        @Option(help: "Only this order's events.") var mrn: String?
        @Option(help: "At most this many (1 to 100).") var limit: Int = 20
        @Option(help: "Continue after this event id (the previous page's nextCursor).") var after: String?
        @OptionGroup var api: InternalAPIOptions

        func run() async throws {
            let query = [("status", status), ("type", type), ("mrn", mrn), ("limit", String(limit)), ("after", after)]
                .compactMap { name, value in value.map { (name, $0) } }
            let answer = try await api.request("GET", "/v1/events?" + FormURLEncoding.encode(query))
            let page = try api.object(answer)
            if api.json { return api.printJSON(answer.body) }
            let events = page["data"] as? [[String: Any]] ?? []
            let rows = events.map { e in
                [e["id"] as? String ?? "", e["type"] as? String ?? "", e["mrn"] as? String ?? "", e["status"] as? String ?? "",
                 "\(e["attempts"] as? Int ?? 0)", e["createdAt"] as? String ?? ""]
            }
            printTable(["ID", "TYPE", "MRN", "STATUS", "ATTEMPTS", "CREATED"], rows)
            if let cursor = page["nextCursor"] as? String { print("more: --after \(cursor)") }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one event with its payload and delivery attempts.")
        @Argument(help: "The event id (webhook-id).") var id: String
        @OptionGroup var api: InternalAPIOptions

        func run() async throws {
            let answer = try await api.request("GET", "/v1/events/" + FormURLEncoding.percentEncode(id))
            _ = try api.object(answer)
            api.printJSON(answer.body)
        }
    }

    struct Redeliver: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Queue an event again now, with a fresh retry schedule (same webhook-id).")
        @Argument(help: "The event id (webhook-id).") var id: String
        @OptionGroup var api: InternalAPIOptions

        func run() async throws {
            let answer = try await api.request("POST", "/v1/events/" + FormURLEncoding.percentEncode(id) + "/redeliver")
            let event = try api.object(answer)
            if api.json { return api.printJSON(answer.body) }
            print("queued \(event["id"] as? String ?? id) (\(event["type"] as? String ?? "-"), mrn \(event["mrn"] as? String ?? "-")): status \(event["status"] as? String ?? "-")")
        }
    }
}

/// How the operator tools reach the internal API: its address and the bearer token.
struct InternalAPIOptions: ParsableArguments {
    @Option(name: .customLong("api-url"), help: "The internal API (default: http:// + PAYSIDECAR_LISTEN, else http://127.0.0.1:8080).")
    var apiURL: String?
    @Option(name: .customLong("api-token"), help: "Bearer token [env: PAYSIDECAR_API_TOKEN]") var apiToken: String?
    @Option(name: .customLong("api-token-file"), help: "Read the bearer token from this file [env: PAYSIDECAR_API_TOKEN_FILE]")
    var apiTokenFile: String?
    @Flag(help: "Print the API's JSON as is.") var json = false

    func request(_ method: String, _ path: String) async throws -> (status: Int, body: [UInt8]) {
        let environment = ProcessEnvironment.read()
        var flags: [String: String] = [:]
        flags[Setting.apiToken.variable] = apiToken
        flags[Setting.apiToken.fileVariable!] = apiTokenFile
        let token = try readSetting(.apiToken, flags: flags)
        var base = apiURL ?? environment[Setting.listen.variable].map { "http://\($0)" } ?? "http://127.0.0.1:8080"
        while base.hasSuffix("/") { base.removeLast() }
        var headers: [(name: String, value: String)] = [("Accept", "application/json")]
        if let token { headers.append(("Authorization", "Bearer \(token)")) }
        var configuration = CurlClient.Configuration()
        configuration.proxy = .none
        configuration.timeout = .seconds(10)
        let url = base + path
        let outcome: Result<CurlResponse, any Error> = try await CurlClient.withClient(configuration: configuration) { client in
            do {
                return .success(try await client.execute(CurlRequest(method: method, url: url, headers: headers, body: method == "POST" ? [] : nil)))
            } catch {
                return .failure(error)
            }
        }
        switch outcome {
        case .success(let response): return (response.status, response.body)
        case .failure(let error as CurlError): throw failStartup("cannot reach the internal API at \(base): \(error.message)")
        case .failure(let error): throw failStartup("the internal API: \(error)")
        }
    }

    /// The body as an object, or exit 1 with the problem's detail.
    func object(_ answer: (status: Int, body: [UInt8])) throws -> [String: Any] {
        let parsed = (try? JSONSerialization.jsonObject(with: Data(answer.body))) as? [String: Any] ?? [:]
        guard (200..<300).contains(answer.status) else {
            let detail = parsed["detail"] as? String ?? String(decoding: answer.body, as: UTF8.self)
            printError("pay-sidecar: HTTP \(answer.status) \(parsed["code"] as? String ?? ""): \(detail)")
            throw ExitCode(1)
        }
        return parsed
    }

    func printJSON(_ body: [UInt8]) {
        if let value = try? JSONSerialization.jsonObject(with: Data(body)),
           let pretty = try? JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]) {
            print(String(decoding: pretty, as: UTF8.self))
        } else {
            print(String(decoding: body, as: UTF8.self))
        }
    }
}

/// `pay-sidecar secrets`: what can be done to the running sidecar's secrets without a restart.
struct Secrets: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Act on the running sidecar's secrets (talks to the internal API).",
        subcommands: [RevokePrevious.self]
    )

    struct RevokePrevious: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "revoke-previous",
            abstract: "End the grace period of rotated secrets now: a leaked previous secret stops working at once.",
            discussion: """
                After a rotation (SIGHUP or a changed *_FILE) the previous merchant secret, webhook secret and API token stay \
                valid for PAYSIDECAR_SECRET_GRACE_PERIOD. When the previous one leaked, rotate, then run this: callbacks \
                signed with it are refused, webhooks carry only the new signature, the previous token is refused.
                """
        )
        @OptionGroup var api: InternalAPIOptions

        func run() async throws {
            let answer = try await api.request("POST", "/v1/secrets/revoke-previous")
            let result = try api.object(answer)
            if api.json { return api.printJSON(answer.body) }
            let revoked = result["revoked"] as? [String] ?? []
            print(revoked.isEmpty ? "no previous secret was still valid" : "revoked: " + revoked.joined(separator: ", "))
        }
    }
}

func printTable(_ header: [String], _ rows: [[String]]) {
    let all = [header] + rows
    let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
    for row in all {
        print(row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "  ")
            .trimmingSpaces())
    }
}

func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// `pay-sidecar healthcheck`: for the container's HEALTHCHECK (the runtime image has no curl).
struct HealthCheck: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "healthcheck",
        abstract: "Exit 0 when the local sidecar answers /healthz (or /readyz with --ready), else 1.",
        discussion: "Asks the internal listener at PAYSIDECAR_LISTEN (a wildcard host is asked on loopback)."
    )

    @Flag(help: "Ask /readyz (database open) instead of /healthz (process up).") var ready = false
    @Option(help: "Seconds to wait for the answer.") var timeout: Int = 3

    func run() async throws {
        let listen = ProcessEnvironment.read()[Setting.listen.variable] ?? Setting.listen.defaultValue!
        guard let address = ListenAddress(listen) else { throw failStartup("\(Setting.listen.variable): '\(listen)' is not host:port") }
        let host = ["0.0.0.0", "::", "[::]"].contains(address.host) ? "127.0.0.1" : address.host
        let url = "http://\(host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host):\(address.port)\(ready ? "/readyz" : "/healthz")"
        var configuration = CurlClient.Configuration()
        configuration.proxy = .none
        configuration.timeout = .seconds(max(1, timeout))
        let status = try await CurlClient.withClient(configuration: configuration) { client in
            (try? await client.execute(CurlRequest(url: url)))?.status
        }
        guard status == 200 else {
            printError("healthcheck: \(url) answered \(status.map(String.init) ?? "nothing")")
            throw ExitCode(1)
        }
    }
}
