import Crypto
import CurlHTTP
import Foundation
import GatewayProtocol
import GatewaySimulator
import Logging
import PostgresTestSupport
import ServiceLifecycle
import Sidecar
import Synchronization
import TestSupport
import Testing

enum TestMerchant {
    static let appKey = "mch_e2e"
    static let secret = "e2e-merchant-secret-9f2c"
    static let apiToken = "e2e-api-token-31337"
    static let webhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    /// Each secret, and the webhook secret's key without its prefix.
    static let allSecrets = [secret, apiToken, webhookSecret, String(webhookSecret.dropFirst("whsec_".count))]
}

/// Fails the test if `text` (log output, metrics, a response) contains any of `secrets`.
func expectNoSecrets(in text: String, _ secrets: [String], sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(!text.isEmpty, "there is output to scan", sourceLocation: sourceLocation)
    for secret in secrets where text.contains(secret) {
        Issue.record("a secret (\(secret.prefix(3))…) appears in the output", sourceLocation: sourceLocation)
    }
}

/// MD5 signing written out from the gateway document, independent of the code under test.
func independentSign(_ pairs: [(String, String)], secret: String = TestMerchant.secret) -> String {
    let text = pairs.map { "\($0.0)=\($0.1)" }.joined(separator: "&") + "&key=\(secret)"
    return Insecure.MD5.hash(data: Array(text.utf8)).map { String(format: "%02x", $0) }.joined()
}

/// Collects every log line of a test, at trace level, so tests can search them for secrets.
final class LogCapture: Sendable {
    let lines = Mutex<[String]>([])

    func logger(_ label: String) -> Logger {
        Logger(label: label) { label in CapturingHandler(label: label, capture: self) }
    }

    var all: String { lines.withLock { $0.joined(separator: "\n") } }

    struct CapturingHandler: LogHandler {
        let label: String
        let capture: LogCapture
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
            let fields = merged.keys.sorted().map { "\($0)=\(merged[$0]!)" }.joined(separator: " ")
            capture.lines.withLock { $0.append("\(event.level) \(label) \(event.message) \(fields)") }
        }
    }
}

/// The addresses of a running sidecar and its simulator, and a client for both: what every end-to-end test
/// talks to, whether the sidecar runs in this process (`E2E`) or as the real binary (`BinaryE2E`).
protocol SidecarEndpoints: Sendable {
    var client: CurlClient { get }
    /// The simulator's base URL.
    var gateway: String { get }
    var api: String { get }
    var callbackListener: String { get }
    /// The webhook receiver (PAYSIDECAR_WEBHOOK_URL points at `{receiver}/hooks`).
    var receiver: TestHTTPServer { get }
}

extension SidecarEndpoints {
    func post(_ path: String, json: String, headers: [(String, String)] = [("Content-Type", "application/json")]) async throws -> CurlResponse {
        try await client.execute(CurlRequest(method: "POST", url: api + path, headers: headers, body: Array(json.utf8)))
    }

    func get(_ path: String, headers: [(String, String)] = []) async throws -> CurlResponse {
        try await client.execute(CurlRequest(url: api + path, headers: headers))
    }

    /// What the simulator received on its gateway endpoints.
    func gatewayRequests() async throws -> [[String: Any]] {
        let response = try await client.execute(CurlRequest(url: gateway + "/_sim/requests"))
        return try JSONSerialization.jsonObject(with: Data(response.body)) as? [[String: Any]] ?? []
    }

    /// Posts a callback form to the callback listener, as the gateway would.
    func callback(_ kind: String, _ form: String, headers: [(String, String)] = [("Content-Type", "application/x-www-form-urlencoded")]) async throws -> CurlResponse {
        try await client.execute(CurlRequest(method: "POST", url: "\(callbackListener)/callbacks/\(kind)", headers: headers, body: Array(form.utf8)))
    }

    /// Every event the events API lists, following pages.
    func allEvents(_ filter: String = "", headers: [(String, String)] = []) async throws -> [[String: Any]] {
        var result: [[String: Any]] = []
        var cursor: String?
        repeat {
            let page = try object(try await get("/v1/events?limit=100\(filter)\(cursor.map { "&after=\($0)" } ?? "")", headers: headers))
            result += page["data"] as? [[String: Any]] ?? []
            cursor = page["nextCursor"] as? String
        } while cursor != nil
        return result
    }

    func event(_ id: String) async throws -> [String: Any] {
        try object(try await get("/v1/events/\(id)"))
    }

    func addFault(_ json: String) async throws {
        let response = try await client.execute(CurlRequest(method: "POST", url: gateway + "/_sim/faults", headers: [("Content-Type", "application/json")], body: Array(json.utf8)))
        precondition(response.status == 201, response.bodyText)
    }

    /// Journals a deposit (web API mode) that the default `depositCallbackForm` matches: 100, channel 2.
    func createDeposit(_ mrn: String, amount: String = "100", channel: Int = 2, headers: [(String, String)] = [("Content-Type", "application/json")]) async throws {
        let response = try await post("/v1/deposits", json: #"{"mrn":"\#(mrn)","amount":"\#(amount)","channelId":\#(channel),"returnUrl":"https://shop.example/r"}"#, headers: headers)
        precondition(response.status == 201, response.bodyText)
    }

    /// Journals a payout that the default `payoutCallbackForm` matches: 500.
    func createPayout(_ mrn: String, amount: Int = 500, headers: [(String, String)] = [("Content-Type", "application/json")]) async throws {
        let response = try await post("/v1/payouts", json: #"{"mrn":"\#(mrn)","amount":\#(amount),"bankName":"b","accountName":"a","accountNumber":"1"}"#, headers: headers)
        precondition(response.status == 202, response.bodyText)
    }

    func simBalance() async throws -> String? {
        try object(try await client.execute(CurlRequest(url: gateway + "/_sim/balance")))["amount"] as? String
    }

    func simPost(_ path: String, _ body: String = "") async throws {
        _ = try await client.execute(CurlRequest(method: "POST", url: gateway + path, body: Array(body.utf8)))
    }

    /// How many creates reached the simulator on `path` (e.g. `/api/Payouts/Create`).
    func creates(_ path: String) async throws -> Int {
        try await gatewayRequests().filter { ($0["path"] as? String) == path }.count
    }

    /// The bodies of the webhooks the receiver got, in order.
    func webhookBodies() -> [[String: Any]] {
        receiver.requests.compactMap { try? JSONSerialization.jsonObject(with: Data($0.body)) as? [String: Any] }
    }

    /// The journal's view of an order (`journal` of GET /v1/{kind}/{mrn}).
    func journal(_ kind: String, _ mrn: String) async throws -> [String: Any] {
        try object(try await get("/v1/\(kind)s/\(mrn)"))["journal"] as? [String: Any] ?? [:]
    }
}

/// A running simulator, a sidecar wired to it (in this process), and a client for both.
struct E2E: SidecarEndpoints {
    let simulator: GatewaySimulator
    let server: SidecarServer
    let client: CurlClient
    let gateway: String
    let api: String
    let callbackListener: String
    let logs: LogCapture
    /// The webhook receiver (PAYSIDECAR_WEBHOOK_URL points at `{receiver}/hooks`) and its scripted answers.
    let receiver: TestHTTPServer
    let receiverAnswers: AnswerScript
}

func object(_ response: CurlResponse) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] ?? [:]
}

/// Which database the end-to-end tests give the sidecar: SQLite (a file per test) unless
/// `PAYSIDECAR_TEST_BACKEND=postgres`, which gives each test a fresh PostgreSQL database on the server
/// `PAYSIDECAR_TEST_POSTGRES_URL` names (CI runs the whole suite both ways).
enum TestBackend {
    static let variable = "PAYSIDECAR_TEST_BACKEND"

    static var isPostgres: Bool { ProcessInfo.processInfo.environment[variable] == "postgres" }

    /// A database URL for one test, made for `body` and removed after.
    static func withDatabaseURL<R>(_ body: (String) async throws -> R) async throws -> R {
        if isPostgres {
            guard PostgresTestDatabase.isConfigured else {
                throw TestBackendError(message: "\(variable)=postgres needs \(PostgresTestDatabase.variable) (eval \"$(scripts/pg-test-cluster.sh start)\")")
            }
            return try await PostgresTestDatabase.withFreshDatabase(body)
        }
        let folder = try temporaryFolder("sidecar-test")
        return try await body("sqlite://\(folder.path)/ledger.db")
    }
}

struct TestBackendError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Runs a simulator and a sidecar configured against it (listeners on free ports), then stops both.
@discardableResult
func withSidecar<R: Sendable>(
    settings: [String: String] = [:],
    simulator configureSimulator: (inout SimulatorConfiguration) -> Void = { _ in },
    _ body: (E2E) async throws -> R
) async throws -> R {
    try await TestBackend.withDatabaseURL { databaseURL in
        try await withSidecar(databaseURL: databaseURL, settings: settings, simulator: configureSimulator, body)
    }
}

private func withSidecar<R: Sendable>(
    databaseURL: String,
    settings: [String: String],
    simulator configureSimulator: (inout SimulatorConfiguration) -> Void,
    _ body: (E2E) async throws -> R
) async throws -> R {
    let logs = LogCapture()
    var simConfiguration = SimulatorConfiguration(appKey: TestMerchant.appKey, secretKey: MerchantSecret(TestMerchant.secret))
    simConfiguration.port = 0
    simConfiguration.callbackRetrySchedule = []
    configureSimulator(&simConfiguration)
    let simulator = try GatewaySimulator(configuration: simConfiguration, logger: logs.logger("gateway-sim"))
    let answers = AnswerScript(fallback: TestHTTPResponse(status: 200, text: "ok"))
    let receiver = try await TestHTTPServer.start { _ in answers.next() }
    let callbackPort = try await uniqueTestPort()
    var clientConfiguration = CurlClient.Configuration()
    clientConfiguration.proxy = .none
    return try await withThrowingTaskGroup(of: Void.self) { group in
        let simGroup = ServiceGroup(configuration: .init(services: [simulator], gracefulShutdownSignals: [], logger: logs.logger("test")))
        group.addTask { try await simGroup.run() }
        let gateway = await simulator.baseURL()
        var flags = [
            "PAYSIDECAR_GATEWAY_URL": gateway,
            "PAYSIDECAR_APP_KEY": TestMerchant.appKey,
            "PAYSIDECAR_SECRET_KEY": TestMerchant.secret,
            "PAYSIDECAR_PUBLIC_URL": "http://127.0.0.1:\(callbackPort)",
            "PAYSIDECAR_LISTEN": "127.0.0.1:0",
            "PAYSIDECAR_CALLBACK_LISTEN": "127.0.0.1:\(callbackPort)",
            "PAYSIDECAR_WEBHOOK_URL": "\(receiver.baseURL)/hooks",
            "PAYSIDECAR_WEBHOOK_SECRET": TestMerchant.webhookSecret,
            "PAYSIDECAR_WEBHOOK_RETRY_SCHEDULE": "100ms,100ms,100ms,100ms,100ms",
            "PAYSIDECAR_WEBHOOK_TIMEOUT": "2s",
            "PAYSIDECAR_GATEWAY_TIMEOUT": "5s",  // generous: a loaded CI machine must not turn a slow answer into a 504
            "PAYSIDECAR_LOG_LEVEL": "trace",
        ]
        flags["PAYSIDECAR_DATABASE_URL"] = databaseURL
        if TestBackend.isPostgres {
            // Every test of the suite runs at once on two cores: a generous deadline, and few connections each so
            // that all the tests' pools fit in the test server's max_connections.
            flags["PAYSIDECAR_DATABASE_TIMEOUT"] = "30s"
            flags["PAYSIDECAR_DATABASE_POOL_SIZE"] = "3"
        }
        flags.merge(settings) { _, new in new }
        for (key, value) in settings where value.isEmpty { flags[key] = nil }
        let configuration = try SidecarConfiguration.load(flags: flags, environment: [:])
        let server = try await SidecarServer(configuration: configuration, logger: logs.logger("pay-sidecar"))
        let sidecarGroup = ServiceGroup(configuration: .init(services: server.services, gracefulShutdownSignals: [], logger: logs.logger("test")))
        group.addTask { try await sidecarGroup.run() }
        let ports = try await server.boundPorts()
        do {
            let result = try await CurlClient.withClient(configuration: clientConfiguration) { client in
                try await body(E2E(
                    simulator: simulator, server: server, client: client, gateway: gateway,
                    api: "http://127.0.0.1:\(ports.internalAPI)", callbackListener: "http://127.0.0.1:\(ports.callback)", logs: logs,
                    receiver: receiver, receiverAnswers: answers
                ))
            }
            await sidecarGroup.triggerGracefulShutdown()
            await simGroup.triggerGracefulShutdown()
            try await group.waitForAll()
            // Every end-to-end test doubles as a leak check: all its log output, at trace level.
            let secretSettings = Setting.all.filter(\.isSecret).compactMap { settings[$0.variable] }.filter { !$0.isEmpty }
            expectNoSecrets(in: logs.all, TestMerchant.allSecrets + secretSettings)
            return result
        } catch {
            await sidecarGroup.triggerGracefulShutdown()
            await simGroup.triggerGracefulShutdown()
            try? await group.waitForAll()
            throw error
        }
    }
}

/// A deposit callback form signed independently.
func depositCallbackForm(mrn: String, amount: String = "100.00", originAmount: String = "100", channel: String = "2",
                         appKey: String = TestMerchant.appKey, secret: String = TestMerchant.secret, sign: String? = nil) -> String {
    let fields = [("amount", amount), ("appKey", appKey), ("channel", channel), ("mrn", mrn), ("originAmount", originAmount)]
    return formBody(fields + [("sign", sign ?? independentSign(fields, secret: secret))])
}

/// A payout callback form signed independently.
func payoutCallbackForm(mrn: String, amount: String = "500", appKey: String = TestMerchant.appKey, sign: String? = nil) -> String {
    let fields = [("amount", amount), ("appKey", appKey), ("mrn", mrn)]
    return formBody(fields + [("sign", sign ?? independentSign(fields))])
}

func formBody(_ pairs: [(String, String)]) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return pairs.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed)!)" }.joined(separator: "&")
}

/// Runs blocking work (waiting for a child process) on a thread of its own: blocking one of the few threads of
/// Swift's cooperative pool would stall every server under test in this process.
func offThePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}

/// Runs a program (found on PATH) to completion; its standard output and error together.
func runProgram(_ arguments: [String], environment: [String: String]? = nil, directory: URL? = nil) async throws -> (status: Int32, output: String) {
    try await offThePool { try runProgramBlocking(arguments, environment: environment, directory: directory) }
}

private func runProgramBlocking(_ arguments: [String], environment: [String: String]?, directory: URL?) throws -> (status: Int32, output: String) {
    let result = try runCapturing("/usr/bin/env", arguments, environment: ProcessInfo.processInfo.environment.merging(environment ?? [:]) { $1 },
                                  directory: directory)
    return (result.status, result.stdout + result.stderr)
}

/// Runs `executable` to completion (blocking) with exactly `environment` and `input` on its standard input.
/// The status is the exit code, or 128 + the signal that ended it.
func runCapturing(_ executable: String, _ arguments: [String], environment: [String: String], directory: URL? = nil,
                  input: String? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
    let run = try ChildProcess.capture(executable, arguments, environment: environment, directory: directory?.path, input: input ?? "")
    switch run.termination {
    case .exited(let code): return (code, run.stdout, run.stderr)
    case .signalled(let signal): return (128 + signal, run.stdout, run.stderr)
    }
}

/// A fresh temporary folder.
func temporaryFolder(_ prefix: String) throws -> URL {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    return folder
}
