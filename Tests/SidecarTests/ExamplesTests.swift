import CurlHTTP
import Foundation
import TestSupport
import Testing

/// The repository's `examples/` folder.
let examplesFolder = repositoryRoot.appendingPathComponent("examples")

/// True when `program` is on PATH (the optional toolchains: node, go, php, java).
func onPath(_ program: String) -> Bool {
    (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").contains {
        FileManager.default.isExecutableFile(atPath: "\($0)/\(program)")
    }
}

/// A long-running program whose output goes to a file the test can read while it runs.
final class Background: Sendable {
    let process: ChildProcess
    let output: URL

    init(_ arguments: [String], environment: [String: String] = [:], inheritEnvironment: Bool = true) throws {
        output = try temporaryFolder("bg").appendingPathComponent("output.txt")
        process = try ChildProcess("/usr/bin/env", arguments,
                                   environment: inheritEnvironment ? ProcessInfo.processInfo.environment.merging(environment) { $1 } : environment,
                                   output: output.path)
    }

    var text: String { FileManager.default.contents(atPath: output.path).map { String(decoding: $0, as: UTF8.self) } ?? "" }

    /// SIGKILL: these are throwaway processes.
    func stop() {
        process.signal(SIGKILL)
        process.wait()
    }
}

@Suite("Examples", .serialized)
struct ExamplesTests {
    /// Runs `pay-sidecar demo` on free ports for `body`.
    func withDemo(_ body: (String) async throws -> Void) async throws {
        let ports = [try await uniqueTestPort(), try await uniqueTestPort(), try await uniqueTestPort(), try await uniqueTestPort()]
        let demo = try Background([paySidecarBinary().path, "demo", "--gateway-listen", "127.0.0.1:\(ports[0])", "--listen", "127.0.0.1:\(ports[1])",
                                   "--callback-listen", "127.0.0.1:\(ports[2])", "--receiver-listen", "127.0.0.1:\(ports[3])"])
        defer { demo.stop() }
        let api = "http://127.0.0.1:\(ports[1])"
        var configuration = CurlClient.Configuration()
        configuration.proxy = .none
        let up = try await CurlClient.withClient(configuration: configuration) { client in
            await eventually { (try? await client.execute(CurlRequest(url: api + "/readyz")))?.status == 200 }
        }
        try #require(up, "the demo did not start: \(demo.text)")
        try await body(api)
    }

    static let clients: [(language: String, program: String, arguments: [String], directory: String?)] = [
        ("shell", "bash", ["shell/client.sh"], nil),
        ("Python", "python3", ["python/client.py"], nil),
        ("Node.js", "node", ["node/client.mjs"], nil),
        ("Go", "go", ["run", "."], "go"),
        ("PHP", "php", ["php/client.php"], nil),
        ("Java", "java", ["java/Client.java"], nil),
    ]

    @Test("the clients in six languages create a deposit and a payout against the demo and query both (shell and Python always; the others where their toolchain is installed)")
    func clientsAgainstTheDemo() async throws {
        try await withDemo { api in
            var ran: [String] = []
            for client in Self.clients {
                guard onPath(client.program) else {
                    #expect(!["shell", "Python"].contains(client.language), "\(client.program) is required for the \(client.language) example")
                    continue
                }
                let directory = examplesFolder.appendingPathComponent(client.directory ?? "")
                // At the lowest priority: compilers (go, javac) would otherwise starve the servers of the tests
                // running beside this one on a small machine.
                let (status, output) = try await runProgram(["nice", "-n", "19", client.program] + client.arguments,
                                                            environment: ["SIDECAR_URL": api, "GOMAXPROCS": "1"], directory: directory)
                #expect(status == 0, "\(client.language): \(output)")
                #expect(output.contains("POST /v1/deposits -> 201"), "\(client.language): \(output)")
                #expect(output.contains("POST /v1/payouts -> 202"), "\(client.language): \(output)")
                let queries = output.split(separator: "\n").filter { $0.hasPrefix("GET /v1/") }
                #expect(queries.count == 2, "\(client.language): \(output)")
                for line in queries { #expect(line.contains("pending"), "\(client.language): \(line)") }
                ran.append(client.language)
            }
            print("examples run against the demo: \(ran.joined(separator: ", "))")
            #expect(ran.contains("shell") && ran.contains("Python"))
        }
    }

    @Test("the shell example retries an unknown outcome with the same body and the sidecar answers it without a second order")
    func shellRetriesUnknown() async throws {
        // Against the full harness: the simulator answers the first payout create after the gateway timeout;
        // the reconciler learns the order's fate, and the example's identical retry is answered from the journal.
        try await withSidecar(settings: ["PAYSIDECAR_GATEWAY_TIMEOUT": "300ms", "PAYSIDECAR_RECONCILE_AFTER": "200ms"]) { (e2e: E2E) async throws in
            try await e2e.addFault(#"{"path":"/api/Payouts/Create","kind":"delay","value":"1s","count":1}"#)
            let (status, output) = try await runProgram(["bash", examplesFolder.appendingPathComponent("shell/client.sh").path], environment: ["SIDECAR_URL": e2e.api])
            #expect(status == 0, "\(output)")
            #expect(output.contains("POST /v1/payouts -> 202"), "\(output)")
            let creates = try await e2e.gatewayRequests().filter { ($0["path"] as? String) == "/api/Payouts/Create" }
            #expect(creates.count == 1, "one payout reached the gateway: \(creates.count)")
        }
    }

    @Test("the webhook receivers (Python, and Node.js where installed) verify the sidecar's webhooks and refuse forgeries")
    func receivers() async throws {
        var receivers = [("Python", ["python3", examplesFolder.appendingPathComponent("webhook-receiver-python/receiver.py").path])]
        if onPath("node") { receivers.append(("Node.js", ["node", examplesFolder.appendingPathComponent("webhook-receiver-node/receiver.mjs").path])) }
        for (language, command) in receivers {
            let port = try await uniqueTestPort()
            let receiver = try Background(command, environment: ["WEBHOOK_SECRET": TestMerchant.webhookSecret, "PORT": "\(port)"])
            defer { receiver.stop() }
            #expect(await eventually { receiver.text.contains("listening") }, "\(language): \(receiver.text)")
            try await withSidecar(settings: ["PAYSIDECAR_WEBHOOK_URL": "http://127.0.0.1:\(port)/webhooks"]) { (e2e: E2E) async throws in
                try await e2e.createDeposit("D-recv-\(port)")
                #expect(try await e2e.callback("deposit", depositCallbackForm(mrn: "D-recv-\(port)")).bodyText == "success")
                #expect(await eventually { receiver.text.contains("verified deposit.succeeded mrn=D-recv-\(port) amount=100.00 source=callback") },
                        "\(language): \(receiver.text)")
                #expect(await eventually { (try? await e2e.allEvents("&status=delivered"))?.count == 1 },
                        "\(language): the receiver's 2xx marks the event delivered")
                let forged = try await e2e.client.execute(CurlRequest(method: "POST", url: "http://127.0.0.1:\(port)/webhooks", headers: [
                    ("webhook-id", "msg_forged"), ("webhook-timestamp", "\(Int(Date().timeIntervalSince1970))"),
                    ("webhook-signature", "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="), ("Content-Type", "application/json"),
                ], body: Array(#"{"type":"deposit.succeeded","data":{"mrn":"D-forged","amount":"1"}}"#.utf8)))
                #expect(forged.status == 400, "\(language) refuses a forged webhook")
                #expect(receiver.text.contains("refused: no matching signature"))
                #expect(!receiver.text.contains("D-forged"))
            }
        }
    }
}
