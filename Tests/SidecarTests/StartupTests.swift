import CurlHTTP
import Foundation
import Sidecar
import TestSupport
import Testing

func paySidecarBinary() -> URL {
    if let path = ProcessInfo.processInfo.environment["PAY_SIDECAR_BINARY"] { return URL(fileURLWithPath: path) }
    return repositoryRoot.appendingPathComponent(".build/debug/pay-sidecar")
}

let goodEnvironment = [
    "PAYSIDECAR_GATEWAY_URL": "http://127.0.0.1:1",
    "PAYSIDECAR_APP_KEY": "mch_1",
    "PAYSIDECAR_SECRET_KEY": "the-secret-value",
    "PAYSIDECAR_PUBLIC_URL": "https://cb.example",
]

@Suite("pay-sidecar start-up")
struct StartupTests {
    @Test("a missing or malformed setting: one line naming it on stderr, exit code 2", arguments: [
        ([], ["PAYSIDECAR_GATEWAY_URL": ""], "PAYSIDECAR_GATEWAY_URL"),
        (["serve"], ["PAYSIDECAR_SECRET_KEY": ""], "PAYSIDECAR_SECRET_KEY"),
        (["--listen", "nowhere"], [:], "PAYSIDECAR_LISTEN"),
        ([], ["PAYSIDECAR_GATEWAY_TIMEOUT": "soon"], "PAYSIDECAR_GATEWAY_TIMEOUT"),
        (["--webhook-url", "http://app/hooks"], [:], "PAYSIDECAR_WEBHOOK_SECRET"),
        ([], ["PAYSIDECAR_SECRET_KEY": "", "PAYSIDECAR_SECRET_KEY_FILE": "/nonexistent"], "PAYSIDECAR_SECRET_KEY_FILE"),
    ] as [([String], [String: String], String)])
    func badSettings(arguments: [String], overrides: [String: String], setting: String) async throws {
        var environment = goodEnvironment
        for (k, v) in overrides { environment[k] = v.isEmpty ? nil : v }
        let result = try await runTool(arguments, environment: environment)
        #expect(result.status == 2)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(result.stderr)")
        #expect(lines.first?.hasPrefix("pay-sidecar: \(setting):") == true, "\(result.stderr)")
        #expect(!result.stderr.contains("the-secret-value"))
        #expect(result.stdout.isEmpty)
    }

    @Test("--help documents every subcommand and every setting's flag and variable")
    func help() async throws {
        let top = try await runTool(["--help"], environment: [:])
        #expect(top.status == 0)
        #expect(top.stdout.contains("serve") && top.stdout.contains("demo"))
        let serve = try await runTool(["serve", "--help"], environment: [:])
        // Every setting of the table: its flag, its variable, and the _FILE forms of secrets.
        for setting in Setting.all {
            #expect(serve.stdout.contains(setting.variable) && serve.stdout.contains(setting.flag), "\(setting.variable)")
            if let file = setting.fileVariable { #expect(serve.stdout.contains(file) && serve.stdout.contains(setting.fileFlag!), "\(file)") }
        }
        #expect(serve.stdout.contains("--callback-allowed-ips"))
        #expect(try await runTool(["demo", "--help"], environment: [:]).stdout.contains("--gateway-listen"))
    }

    @Test("--version names the release and the libcurl it runs with")
    func version() async throws {
        let run = try await runTool(["--version"], environment: [:])
        #expect(run.status == 0)
        #expect(run.stdout.hasPrefix(SidecarBuild.version + " (libcurl/"), "\(run.stdout)")
    }

    @Test("serve starts both listeners, logs JSON without the secret, and exits 0 on SIGTERM")
    func serveAndStop() async throws {
        let base = try await uniqueTestPort()
        let callbackPort = try await uniqueTestPort()
        var environment = goodEnvironment
        environment["PAYSIDECAR_LISTEN"] = "127.0.0.1:\(base)"
        environment["PAYSIDECAR_CALLBACK_LISTEN"] = "127.0.0.1:\(callbackPort)"
        environment["PAYSIDECAR_LOG_LEVEL"] = "trace"
        environment["PAYSIDECAR_DATABASE_URL"] = "sqlite://" + FileManager.default.temporaryDirectory.appendingPathComponent("startup-\(base).db").path
        let server = try Background([paySidecarBinary().path], environment: environment, inheritEnvironment: false)
        let process = server.process
        defer { if process.isRunning { process.terminate() } }
        var configuration = CurlClient.Configuration()
        configuration.proxy = .none
        try await CurlClient.withClient(configuration: configuration) { client in
            #expect(await eventually { (try? await client.execute(CurlRequest(url: "http://127.0.0.1:\(base)/healthz")))?.status == 200 })
            #expect(try await client.execute(CurlRequest(url: "http://127.0.0.1:\(callbackPort)/healthz")).status == 200)
            let down = try await client.execute(CurlRequest(method: "POST", url: "http://127.0.0.1:\(base)/v1/payouts", headers: [("Content-Type", "application/json")],
                                                            body: Array(#"{"mrn":"P-1","amount":1,"bankName":"b","accountName":"a","accountNumber":"1"}"#.utf8)))
            #expect(down.status == 502)
        }
        process.terminate()
        let termination = try await offThePool { process.wait() }
        let output = server.text
        #expect(termination == .exited(0))
        let lines = output.split(separator: "\n")
        #expect(lines.contains { $0.contains(#""msg":"pay-sidecar started""#) })
        for line in lines where line.hasPrefix("{") {
            #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil, "every line is JSON: \(line)")
        }
        #expect(lines.contains { $0.contains(#""route":"/v1/payouts""#) && $0.contains(#""status":"502""#) })
        #expect(!output.contains("the-secret-value"))
    }

    @Test("an unreachable PostgreSQL at start-up: one line naming PAYSIDECAR_DATABASE_URL and the server (never the password), exit 2, within the timeout")
    func unreachableDatabase() async throws {
        let closed = try await uniqueTestPort()  // nothing listens there
        var environment = goodEnvironment
        environment["PAYSIDECAR_LISTEN"] = "127.0.0.1:\(try await uniqueTestPort())"
        environment["PAYSIDECAR_CALLBACK_LISTEN"] = "127.0.0.1:\(try await uniqueTestPort())"
        environment["PAYSIDECAR_DATABASE_URL"] = "postgres://app:db-pass-123@127.0.0.1:\(closed)/pay?sslmode=disable"
        environment["PAYSIDECAR_DATABASE_TIMEOUT"] = "2s"
        let started = ContinuousClock.now
        let result = try await runTool([], environment: environment)
        #expect(ContinuousClock.now - started < .seconds(15), "failed fast: \(ContinuousClock.now - started)")
        #expect(result.status == 2)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(result.stderr)")
        #expect(lines.first?.hasPrefix("pay-sidecar: PAYSIDECAR_DATABASE_URL: cannot reach PostgreSQL at postgres://127.0.0.1:\(closed)/pay") == true, "\(result.stderr)")
        #expect(!result.stderr.contains("db-pass-123") && !result.stdout.contains("db-pass-123"))
    }
}
