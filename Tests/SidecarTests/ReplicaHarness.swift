import CurlHTTP
import Foundation
import GatewayProtocol
import GatewaySimulator
import Logging
import PostgresTestSupport
import ServiceLifecycle
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// One replica as a test talks to it: its two listeners, the shared simulator and webhook receiver.
struct ReplicaEndpoints: SidecarEndpoints {
    let client: CurlClient
    let gateway: String
    let api: String
    let callbackListener: String
    let receiver: TestHTTPServer
}

/// Several real `pay-sidecar serve` processes on one PostgreSQL database, each with its own ports and log, wired
/// to one simulator (in this process) and one webhook receiver: contract section 10 as an operator runs it.
struct ReplicaSet: Sendable {
    let client: CurlClient
    let simulator: GatewaySimulator
    let gateway: String
    /// The database the replicas share (a fresh one, dropped after the test).
    let database: String
    let receiver: TestHTTPServer
    let receiverAnswers: AnswerScript
    let processes: [SidecarProcess]

    subscript(_ index: Int) -> ReplicaEndpoints {
        ReplicaEndpoints(client: client, gateway: gateway, api: processes[index].api, callbackListener: processes[index].callbacks, receiver: receiver)
    }

    var indices: Range<Int> { processes.indices }

    /// Launches the replicas at `indices` at the same moment, then waits until each answers `/readyz`.
    func start(_ indices: [Int]? = nil) async throws {
        let chosen = indices ?? Array(processes.indices)
        for index in chosen { try processes[index].launch() }
        // Generous: three binaries, the simulator and PostgreSQL share two cores with the rest of the suite.
        for index in chosen { try await processes[index].waitUntilReady(client, timeout: .seconds(30)) }
    }
}

/// Runs `body` with `count` replicas configured (not started: `ReplicaSet.start`) on a fresh PostgreSQL database,
/// then stops every replica still running with SIGTERM (each must exit 0) and scans every log for secrets.
func withReplicaSet<R: Sendable>(
    count: Int,
    settings: [String: String] = [:],
    simulator configureSimulator: (inout SimulatorConfiguration) -> Void = { _ in },
    _ body: (ReplicaSet) async throws -> R
) async throws -> R {
    try await PostgresTestDatabase.withFreshDatabase { (database: String) async throws -> R in
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
                "PAYSIDECAR_DATABASE_URL": database,
                // Every replica of every test at once on two cores: a generous deadline, few connections each.
                "PAYSIDECAR_DATABASE_TIMEOUT": "30s",
                "PAYSIDECAR_DATABASE_POOL_SIZE": "3",
                "PAYSIDECAR_WEBHOOK_RETRY_SCHEDULE": "200ms,200ms,200ms,200ms,200ms",
                "PAYSIDECAR_WEBHOOK_TIMEOUT": "5s",
                "PAYSIDECAR_GATEWAY_TIMEOUT": "5s",
                "PAYSIDECAR_LOG_LEVEL": "debug",
            ]
            environment.merge(settings) { $1 }
            var processes: [SidecarProcess] = []
            for _ in 0..<count { processes.append(try await SidecarProcess(webhookURL: "\(receiver.baseURL)/hooks", settings: environment)) }
            do {
                let result = try await CurlClient.withClient(configuration: clientConfiguration) { client in
                    let set = ReplicaSet(client: client, simulator: simulator, gateway: gateway, database: database, receiver: receiver,
                                         receiverAnswers: answers, processes: processes)
                    let result = try await body(set)
                    for process in processes where process.isRunning {
                        #expect(await process.signal(SIGTERM) == .exited(0), "SIGTERM drains and exits 0")
                    }
                    return result
                }
                await simGroup.triggerGracefulShutdown()
                try await group.waitForAll()
                try await receiver.stop()
                for process in processes { expectNoSecrets(in: process.log, TestMerchant.allSecrets) }
                return result
            } catch {
                for process in processes { _ = await process.signal(SIGKILL) }
                await simGroup.triggerGracefulShutdown()
                try? await group.waitForAll()
                try? await receiver.stop()
                throw error
            }
        }
    }
}

/// The keys among `spans` that have two spans overlapping in time (a span without an end lasts until now).
func overlapping<Key: Hashable, Instant: Comparable>(_ spans: [(key: Key, start: Instant, end: Instant)]) -> Set<Key> {
    var found = Set<Key>()
    for (key, group) in Dictionary(grouping: spans, by: \.key) {
        let sorted = group.sorted { $0.start < $1.start }
        for (earlier, later) in zip(sorted, sorted.dropFirst()) where later.start < earlier.end {
            found.insert(key)
        }
    }
    return found
}

/// Each webhook the receiver got: its id and the time it was in the receiver's hands.
func webhookSpans(_ receiver: TestHTTPServer) -> [(key: String, start: ContinuousClock.Instant, end: ContinuousClock.Instant)] {
    receiver.requests.compactMap { request in
        guard let id = request.header("webhook-id") else { return nil }
        return (id, request.receivedAt, request.endedAt ?? .now)
    }
}

/// The simulator's log of gateway queries on `path`: each one's mrn and when the gateway had it in hand.
func querySpans(_ requests: [[String: Any]], path: String) -> [(key: String, start: Date, end: Date)] {
    let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    return requests.compactMap { request in
        guard request["path"] as? String == path, let query = request["query"] as? String,
              let mrn = (try? FormURLEncoding.decode(query))?.first(where: { $0.name == "mrn" })?.value,
              let at = (request["at"] as? String).flatMap({ try? style.parse($0) }) else { return nil }
        // Not answered yet: still in hand.
        let answered = (request["answeredAt"] as? String).flatMap { try? style.parse($0) } ?? .distantFuture
        return (mrn, at, answered)
    }
}
