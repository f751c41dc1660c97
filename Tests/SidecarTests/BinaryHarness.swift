import CurlHTTP
import Foundation
import GatewayProtocol
import GatewaySimulator
import Logging
import ServiceLifecycle
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The real `pay-sidecar serve` binary wired to a simulator in this process, with a webhook receiver: the
/// money-safety cases are checked from outside, through the HTTP API and a gateway double, as a user would
/// see them.
struct BinaryE2E: SidecarEndpoints {
    let client: CurlClient
    let simulator: GatewaySimulator
    let gateway: String
    let api: String
    let callbackListener: String
    let receiver: TestHTTPServer
    let receiverAnswers: AnswerScript
    let sidecar: SidecarProcess
    /// The database the binary journals to: a SQLite file's path, or a PostgreSQL URL
    /// (`PAYSIDECAR_TEST_BACKEND=postgres`).
    let database: String

    /// Everything the binary logged so far.
    var log: String { (try? String(contentsOf: sidecar.logFile, encoding: .utf8)) ?? "" }
}

/// Runs `body` against a fresh binary (its own database and ports), a simulator and a receiver; stops the
/// binary with SIGTERM afterwards (it must exit 0) and scans its whole log for secrets.
func withBinarySidecar<R: Sendable>(
    settings: [String: String] = [:],
    arguments: [String] = [],
    simulator configureSimulator: (inout SimulatorConfiguration) -> Void = { _ in },
    _ body: (BinaryE2E) async throws -> R
) async throws -> R {
    guard TestBackend.isPostgres else {
        return try await withBinarySidecar(database: nil, settings: settings, arguments: arguments, simulator: configureSimulator, body)
    }
    return try await TestBackend.withDatabaseURL { (url: String) async throws -> R in
        try await withBinarySidecar(database: url, settings: settings, arguments: arguments, simulator: configureSimulator, body)
    }
}

/// `database`: a PostgreSQL URL, or nil for the SQLite file `SidecarProcess` makes.
private func withBinarySidecar<R: Sendable>(
    database: String?,
    settings: [String: String],
    arguments: [String],
    simulator configureSimulator: (inout SimulatorConfiguration) -> Void,
    _ body: (BinaryE2E) async throws -> R
) async throws -> R {
    var simConfiguration = SimulatorConfiguration(appKey: TestMerchant.appKey, secretKey: MerchantSecret(TestMerchant.secret))
    simConfiguration.port = 0
    simConfiguration.callbackRetrySchedule = []
    configureSimulator(&simConfiguration)
    let simulator = try GatewaySimulator(configuration: simConfiguration, logger: Logger(label: "gateway-sim") { _ in SwiftLogNoOpLogHandler() })
    let answers = AnswerScript(fallback: TestHTTPResponse(status: 200, text: "ok"))
    let receiver = try await TestHTTPServer.start { _ in answers.next() }
    var clientConfiguration = CurlClient.Configuration()
    clientConfiguration.proxy = .none
    return try await withThrowingTaskGroup(of: Void.self) { group in
        let simGroup = ServiceGroup(configuration: .init(services: [simulator], gracefulShutdownSignals: [], logger: Logger(label: "test")))
        group.addTask { try await simGroup.run() }
        let gateway = await simulator.baseURL()
        var environment = [
            "PAYSIDECAR_GATEWAY_URL": gateway,
            "PAYSIDECAR_WEBHOOK_RETRY_SCHEDULE": "100ms,100ms,100ms,100ms,100ms",
            "PAYSIDECAR_WEBHOOK_TIMEOUT": "2s",
            "PAYSIDECAR_GATEWAY_TIMEOUT": "5s",
            "PAYSIDECAR_LOG_LEVEL": "trace",
        ]
        if let database {
            environment["PAYSIDECAR_DATABASE_URL"] = database
            environment["PAYSIDECAR_DATABASE_TIMEOUT"] = "30s"
            environment["PAYSIDECAR_DATABASE_POOL_SIZE"] = "3"
        }
        environment.merge(settings) { $1 }
        let sidecar = try await SidecarProcess(webhookURL: "\(receiver.baseURL)/hooks", settings: environment, arguments: arguments)
        do {
            let result = try await CurlClient.withClient(configuration: clientConfiguration) { client in
                try await sidecar.start(client)
                let e2e = BinaryE2E(client: client, simulator: simulator, gateway: gateway, api: sidecar.api, callbackListener: sidecar.callbacks,
                                    receiver: receiver, receiverAnswers: answers, sidecar: sidecar, database: database ?? sidecar.databasePath)
                let result = try await body(e2e)
                #expect(await sidecar.signal(SIGTERM) == .exited(0), "SIGTERM drains and exits 0")
                return result
            }
            await simGroup.triggerGracefulShutdown()
            try await group.waitForAll()
            try await receiver.stop()
            let secrets = ["PAYSIDECAR_SECRET_KEY", "PAYSIDECAR_API_TOKEN", "PAYSIDECAR_WEBHOOK_SECRET"].compactMap { sidecar.environment[$0] }.filter { !$0.isEmpty }
            expectNoSecrets(in: (try? String(contentsOf: sidecar.logFile, encoding: .utf8)) ?? "", TestMerchant.allSecrets + secrets)
            return result
        } catch {
            _ = await sidecar.signal(SIGKILL)
            await simGroup.triggerGracefulShutdown()
            try? await group.waitForAll()
            try? await receiver.stop()
            throw error
        }
    }
}

/// A plain TCP connection to a listener, for what an HTTP client would not do (half-sent heads, idle
/// connections).
final class RawConnection: @unchecked Sendable {
    // @unchecked: used by one test task at a time.
    let descriptor: Int32

    init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            close(descriptor)
            throw TestFailure("connect to 127.0.0.1:\(port) failed: errno \(errno)")
        }
    }

    deinit { close(descriptor) }

    func send(_ text: String) {
        _ = text.withCString { Glibc.send(descriptor, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
    }

    /// True once the server has closed the connection (end of file or reset), reading and discarding
    /// whatever it sent before. Never blocks.
    var isClosedByPeer: Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(descriptor, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if n > 0 { continue }
            if n == 0 { return true }
            return errno != EAGAIN && errno != EWOULDBLOCK
        }
    }

    /// What the server sent so far (without waiting).
    func received() -> String {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let n = recv(descriptor, &buffer, buffer.count, Int32(MSG_DONTWAIT))
        return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : ""
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The value of one sample in Prometheus text, by name and labels (nil when absent).
func metric(_ text: String, _ name: String, _ labels: [String: String] = [:]) -> Double? {
    (try? parsePrometheus(text))?.value(name, labels)
}
