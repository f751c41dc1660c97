import CurlHTTP
import Foundation
import Sidecar
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

    /// A compose file as JSON, read by Python's PyYAML (nil when python3 or PyYAML is missing: the text checks still run).
    static func composeDocument(_ file: URL) async throws -> [String: Any]? {
        guard onPath("python3") else { return nil }
        let (status, output) = try await runProgram(["python3", "-c", """
            import json, sys
            try:
                import yaml
            except ImportError:
                print("no-yaml"); sys.exit(0)
            print(json.dumps(yaml.safe_load(open(sys.argv[1]))))
            """, file.path])
        #expect(status == 0, "\(file.lastPathComponent) is not YAML: \(output)")
        guard status == 0, !output.hasPrefix("no-yaml") else { return nil }
        return try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any]
    }

    @Test("the compose files name only settings that exist, pass secrets as files, and the PostgreSQL one runs two replicas on one database behind the callback proxy they trust")
    func composeFiles() async throws {
        let known = Set(Setting.all.flatMap { [$0.variable] + ($0.fileVariable.map { [$0] } ?? []) })
        for name in ["docker-compose.yml", "docker-compose.postgres.yml"] {
            let file = examplesFolder.appendingPathComponent(name)
            let text = try String(contentsOf: file, encoding: .utf8)
            let named = Set(text.matches(of: /PAYSIDECAR_[A-Z_]+/).map { String($0.output) })
            #expect(!named.isEmpty && named.isSubset(of: known), "\(name) names unknown settings: \(named.subtracting(known))")
            for secret in Setting.all.filter(\.isSecret) {
                #expect(!text.contains("\(secret.variable):"), "\(name): \(secret.variable) inline; secrets come from files (\(secret.fileVariable!))")
            }
            for path in text.matches(of: /file: (\.\/[^\s]+)/).map({ String($0.output.1) }) {
                #expect(FileManager.default.fileExists(atPath: examplesFolder.appendingPathComponent(path).path), "\(name): \(path) exists")
            }
        }
        let postgres = examplesFolder.appendingPathComponent("docker-compose.postgres.yml")
        guard let document = try await Self.composeDocument(postgres) else {
            print("PyYAML is not installed: docker-compose.postgres.yml checked as text only")
            return
        }
        let services = try #require(document["services"] as? [String: [String: Any]])
        let replicas = services.filter { ($0.value["environment"] as? [String: Any])?["PAYSIDECAR_DATABASE_URL"] != nil }
        #expect(replicas.keys.sorted() == ["sidecar-a", "sidecar-b"])
        let environments = replicas.values.compactMap { $0["environment"] as? [String: Any] }
        let databases = Set(environments.compactMap { $0["PAYSIDECAR_DATABASE_URL"] as? String })
        #expect(databases.count == 1 && databases.first?.hasPrefix("postgres://pay@postgres:5432/") == true, "one database, no password in the URL: \(databases)")
        #expect(environments.allSatisfy { $0["PAYSIDECAR_DATABASE_PASSWORD_FILE"] as? String == "/run/secrets/db_password" })
        // The replicas trust the proxy's address, and the gateway calls back through it.
        let proxy = try #require(services["callbacks"])
        let proxyAddress = ((proxy["networks"] as? [String: Any])?["edge"] as? [String: Any])?["ipv4_address"] as? String
        #expect(proxyAddress != nil && environments.allSatisfy { $0["PAYSIDECAR_TRUSTED_PROXIES"] as? String == proxyAddress })
        #expect(environments.allSatisfy { $0["PAYSIDECAR_PUBLIC_URL"] as? String == "http://callbacks:8081" })
        #expect((proxy["volumes"] as? [String])?.contains("./nginx-callbacks.conf:/etc/nginx/conf.d/default.conf:ro") == true)
        let nginx = try String(contentsOf: examplesFolder.appendingPathComponent("nginx-callbacks.conf"), encoding: .utf8)
        #expect(nginx.contains("server sidecar-a:8081") && nginx.contains("server sidecar-b:8081"))
        let database = try #require(services["postgres"])
        #expect(((database["environment"] as? [String: Any])?["POSTGRES_PASSWORD_FILE"] as? String) == "/run/secrets/db_password")
        let secrets = try #require(document["secrets"] as? [String: [String: String]])
        #expect(Set(secrets.keys) == ["merchant_secret", "api_token", "webhook_secret", "db_password"])
    }
}
