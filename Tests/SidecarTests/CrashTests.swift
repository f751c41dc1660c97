import CurlHTTP
import Foundation
import TestSupport
import Testing

/// A `pay-sidecar serve` process on loopback with its own database, for crash and shutdown tests.
final class SidecarProcess: @unchecked Sendable {
    // @unchecked: used by one test at a time, from one task.
    let environment: [String: String]
    let api: String
    let callbacks: String
    let logFile: URL
    let databasePath: String
    let arguments: [String]
    var process: ChildProcess?

    init(webhookURL: String, settings: [String: String] = [:], arguments: [String] = []) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("crash-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let internalPort = try await uniqueTestPort()
        let callbackPort = try await uniqueTestPort()
        api = "http://127.0.0.1:\(internalPort)"
        callbacks = "http://127.0.0.1:\(callbackPort)"
        logFile = folder.appendingPathComponent("sidecar.log")
        databasePath = folder.appendingPathComponent("ledger.db").path
        self.arguments = arguments
        var env = [
            "PAYSIDECAR_GATEWAY_URL": "http://127.0.0.1:1",
            "PAYSIDECAR_APP_KEY": TestMerchant.appKey,
            "PAYSIDECAR_SECRET_KEY": TestMerchant.secret,
            "PAYSIDECAR_PUBLIC_URL": callbacks,
            "PAYSIDECAR_LISTEN": "127.0.0.1:\(internalPort)",
            "PAYSIDECAR_CALLBACK_LISTEN": "127.0.0.1:\(callbackPort)",
            "PAYSIDECAR_DATABASE_URL": "sqlite://\(folder.path)/ledger.db",
            "PAYSIDECAR_WEBHOOK_URL": webhookURL,
            "PAYSIDECAR_WEBHOOK_SECRET": TestMerchant.webhookSecret,
            "PAYSIDECAR_WEBHOOK_RETRY_SCHEDULE": "200ms,200ms,200ms,200ms,200ms",
        ]
        env.merge(settings) { $1 }
        for (key, value) in settings where value.isEmpty { env[key] = nil }
        environment = env
    }

    func start(_ client: CurlClient) async throws {
        try launch()
        try await waitUntilReady(client)
    }

    /// Starts the process without waiting for it (several replicas start together this way).
    func launch() throws {
        process = try ChildProcess(paySidecarBinary().path, ["serve"] + arguments, environment: environment, output: logFile.path)
    }

    /// Waits (up to `timeout`) until `/readyz` answers 200.
    func waitUntilReady(_ client: CurlClient, timeout: Duration = .seconds(10)) async throws {
        let up = await eventually(timeout: timeout) { (try? await client.execute(CurlRequest(url: self.api + "/readyz")))?.status == 200 }
        guard up else { throw TestFailure("pay-sidecar did not start: \(log)") }
    }

    /// Everything the process logged so far (over all its starts).
    var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    var isRunning: Bool { process?.isRunning ?? false }

    /// Sends `signal` and waits (up to 30 s) for the process to end; how it ended, nil if it did not.
    func signal(_ signal: Int32) async -> ChildProcess.Termination? {
        guard let process else { return nil }
        process.signal(signal)
        _ = await eventually(timeout: .seconds(30)) { !process.isRunning }
        return process.termination
    }
}

/// webhook-id and mrn of each webhook a receiver got.
func deliveries(_ server: TestHTTPServer) -> [(id: String, mrn: String)] {
    server.requests.compactMap { r in
        guard let id = r.header("webhook-id"),
              let body = try? JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any],
              let mrn = (body["data"] as? [String: Any])?["mrn"] as? String else { return nil }
        return (id, mrn)
    }
}

@Suite("Crash safety and shutdown (the real binary)", .serialized)
struct CrashTests {
    @Test("acknowledged callbacks survive SIGKILL before delivery: all delivered after a restart, with the same webhook-ids")
    func sigkill() async throws {
        let answers = AnswerScript(fallback: TestHTTPResponse(status: 200, text: "too late", delay: .seconds(60)))
        let receiver = try await TestHTTPServer.start { _ in answers.next() }
        let sidecar = try await SidecarProcess(webhookURL: "\(receiver.baseURL)/hooks", settings: ["PAYSIDECAR_WEBHOOK_TIMEOUT": "30s"])
        var configuration = CurlClient.Configuration()
        configuration.proxy = .none
        try await CurlClient.withClient(configuration: configuration) { client in
            try await sidecar.start(client)
            let mrns = (0..<20).map { "D-kill-\($0)" }
            for mrn in mrns {
                let ack = try await client.execute(CurlRequest(method: "POST", url: sidecar.callbacks + "/callbacks/deposit",
                    headers: [("Content-Type", "application/x-www-form-urlencoded")], body: Array(depositCallbackForm(mrn: mrn).utf8)))
                #expect(ack.bodyText == "success")
            }
            #expect(await eventually { receiver.requests.count >= 8 }, "attempts are in flight, unanswered")
            let firstRound = deliveries(receiver)
            #expect(await sidecar.signal(SIGKILL) == .signalled(SIGKILL))
            answers.setFallback(TestHTTPResponse(status: 204))
            try await sidecar.start(client)
            #expect(await eventually(timeout: .seconds(20)) { Set(deliveries(receiver).map(\.mrn)).isSuperset(of: mrns) && receiver.requests.count >= firstRound.count + 20 })
            let ids = Dictionary(grouping: deliveries(receiver), by: \.mrn).mapValues { Set($0.map(\.id)) }
            for mrn in mrns { #expect(ids[mrn]?.count == 1, "\(mrn) has one webhook-id across the crash: \(ids[mrn] ?? [])") }
            #expect(await eventually {
                guard let page = try? await client.execute(CurlRequest(url: sidecar.api + "/v1/events?status=delivered&limit=100")),
                      let body = try? JSONSerialization.jsonObject(with: Data(page.body)) as? [String: Any] else { return false }
                return (body["data"] as? [Any])?.count == 20
            })
            #expect(await sidecar.signal(SIGTERM) == .exited(0))
        }
        try await receiver.stop()
    }

    @Test("SIGTERM: in-flight attempts finish within their timeout, the process exits 0, the undelivered stay queued")
    func sigterm() async throws {
        let answers = AnswerScript(fallback: TestHTTPResponse(status: 200, text: "slow", delay: .seconds(60)))
        let receiver = try await TestHTTPServer.start { _ in answers.next() }
        let sidecar = try await SidecarProcess(webhookURL: "\(receiver.baseURL)/hooks", settings: ["PAYSIDECAR_WEBHOOK_TIMEOUT": "1s"])
        var configuration = CurlClient.Configuration()
        configuration.proxy = .none
        try await CurlClient.withClient(configuration: configuration) { client in
            try await sidecar.start(client)
            let ack = try await client.execute(CurlRequest(method: "POST", url: sidecar.callbacks + "/callbacks/payout",
                headers: [("Content-Type", "application/x-www-form-urlencoded")], body: Array(payoutCallbackForm(mrn: "P-term").utf8)))
            #expect(ack.bodyText == "success")
            #expect(await eventually { receiver.requests.count == 1 })
            #expect(await sidecar.signal(SIGTERM) == .exited(0), "exit code 0 after draining")
            answers.setFallback(TestHTTPResponse(status: 204))
            try await sidecar.start(client)
            #expect(await eventually(timeout: .seconds(10)) { deliveries(receiver).filter { $0.mrn == "P-term" }.count >= 2 })
            #expect(Set(deliveries(receiver).map(\.id)).count == 1)
            #expect(await sidecar.signal(SIGTERM) == .exited(0))
        }
        try await receiver.stop()
    }

    @Test("a second process on the same SQLite database is refused at start-up with exit code 2")
    func secondProcess() async throws {
        let receiver = try await TestHTTPServer.start { _ in TestHTTPResponse(status: 204) }
        let sidecar = try await SidecarProcess(webhookURL: "\(receiver.baseURL)/hooks")
        var configuration = CurlClient.Configuration()
        configuration.proxy = .none
        try await CurlClient.withClient(configuration: configuration) { client in
            try await sidecar.start(client)
            var environment = sidecar.environment
            environment["PAYSIDECAR_LISTEN"] = "127.0.0.1:\(try await uniqueTestPort())"
            environment["PAYSIDECAR_CALLBACK_LISTEN"] = "127.0.0.1:\(try await uniqueTestPort())"
            let second = try await runTool([], environment: environment)
            #expect(second.status == 2)
            #expect(second.stderr.hasPrefix("pay-sidecar: PAYSIDECAR_DATABASE_URL:"))
            #expect(second.stderr.contains("in use by another pay-sidecar process"))
            #expect(await sidecar.signal(SIGTERM) == .exited(0))
        }
        try await receiver.stop()
    }
}
